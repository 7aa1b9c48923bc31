package config

import (
	"strings"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	// Nothing set: DESIGN.md's defaults.
	c, err := Read(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != DefaultAddr || c.RedisURL != DefaultRedisURL || c.Region != "us-east-1" || c.AccountID != "000000000000" ||
		c.DeprovisionAfter != 48*time.Hour || c.LeaseTTL != 15*time.Second || c.Launcher != "local" || !c.Autoscale || c.TrustIAM || c.SweepWindow != 40*time.Second {
		t.Errorf("defaults = %+v", c)
	}
	if c.CheckAPI() == nil {
		t.Error("an API without a key pair must be refused")
	}
	// Every value set.
	c, err = Read(env(map[string]string{
		"SLUICE_ADDR": "0.0.0.0:9000", "SLUICE_DEPROVISION_AFTER": "0s", "SLUICE_LEASE_TTL": "3s", "SLUICE_LAUNCHER": "ecs",
		"SLUICE_AUTOSCALE": "off", "SLUICE_API_AUTH": "iam", "SLUICE_UNIT_CPU": "0.5", "SLUICE_SCALE_UP_AFTER": "5s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9000" || c.DeprovisionAfter != 0 || c.LeaseTTL != 3*time.Second || c.Launcher != "ecs" || c.Autoscale ||
		!c.TrustIAM || c.UnitCPU != 0.5 || c.ScaleUpAfter != 5*time.Second {
		t.Errorf("set = %+v", c)
	}
	if c.CheckAPI() != nil {
		t.Error("behind the IAM authorizer the API needs no key pair")
	}
	// Every wrong variable is named at once.
	_, err = Read(env(map[string]string{
		"SLUICE_DEPROVISION_AFTER": "-1h", "SLUICE_LEASE_TTL": "500ms", "SLUICE_LAUNCHER": "k8s", "SLUICE_AUTOSCALE": "maybe",
		"SLUICE_API_AUTH": "none", "SLUICE_UNIT_CPU": "-2", "SLUICE_SWEEP_WINDOW": "soon",
	}))
	for _, name := range []string{"SLUICE_DEPROVISION_AFTER", "SLUICE_LEASE_TTL", "SLUICE_LAUNCHER", "SLUICE_AUTOSCALE", "SLUICE_API_AUTH", "SLUICE_UNIT_CPU", "SLUICE_SWEEP_WINDOW"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("the error %v does not name %s", err, name)
		}
	}
}
