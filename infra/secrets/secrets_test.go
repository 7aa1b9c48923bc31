package secrets

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestBox(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	b, err := NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := b.Seal("hunter2", "arn:a")
	s2, _ := b.Seal("hunter2", "arn:a")
	if s1 == s2 || strings.Contains(s1, "hunter2") {
		t.Fatal("sealing must use a fresh nonce and hide the plaintext")
	}
	if pt, err := b.Open(s1, "arn:a"); err != nil || pt != "hunter2" {
		t.Fatalf("round trip: %q %v", pt, err)
	}
	other, _ := NewBox(base64.StdEncoding.EncodeToString([]byte("ffffffffffffffffffffffffffffffff")))
	// Flip a ciphertext byte (not a base64 character, whose low bits may
	// be padding).
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(s1, "v1:"))
	raw[len(raw)-1] ^= 1
	flipped := "v1:" + base64.StdEncoding.EncodeToString(raw)
	for name, open := range map[string]func() (string, error){
		"wrong aad (moved to another endpoint)": func() (string, error) { return b.Open(s1, "arn:b") },
		"wrong key":                             func() (string, error) { return other.Open(s1, "arn:a") },
		"tampered":                              func() (string, error) { return b.Open(flipped, "arn:a") },
		"not sealed":                            func() (string, error) { return b.Open("hunter2", "arn:a") },
	} {
		if _, err := open(); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: got %v, want ErrSealed", name, err)
		}
	}
	for _, bad := range []string{"", "short", base64.StdEncoding.EncodeToString(make([]byte, 31)), base64.StdEncoding.EncodeToString(make([]byte, 33))} {
		if _, err := NewBox(bad); !errors.Is(err, ErrMasterKey) {
			t.Errorf("key %q: got %v, want ErrMasterKey", bad, err)
		}
	}
}

// TestResolver reads secrets from a real Secrets Manager API: moto_server
// on loopback.
func TestResolver(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	if _, err := exec.LookPath("moto_server"); err != nil {
		t.Fatal("moto_server is not installed (pip install 'moto[server]'): it stands in for AWS Secrets Manager")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	moto := exec.Command("moto_server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := moto.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = moto.Process.Kill(); _ = moto.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/moto-api/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("moto_server did not answer within 30 s")
		}
	}
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", url)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	ctx := context.Background()
	r, err := NewResolver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{
		"rds":         `{"username":"app","password":"p@ss","host":"db.local","port":5432,"dbname":"shop","engine":"postgres"}`,
		"port-string": `{"username":"app","password":"p@ss","host":"db.local","port":"6543"}`,
		"not-json":    `p@ss`,
		"no-password": `{"username":"app","host":"db.local"}`,
	} {
		if _, err := r.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatalf("create secret %s: %v", name, err)
		}
	}
	s, err := r.Resolve(ctx, "rds")
	if err != nil || s != (DBSecret{Username: "app", Password: "p@ss", Host: "db.local", Port: 5432, DBName: "shop"}) {
		t.Fatalf("rds secret: %+v %v", s, err)
	}
	if strings.Contains(s.String(), "p@ss") {
		t.Fatal("DBSecret prints its password")
	}
	if s, err := r.Resolve(ctx, "port-string"); err != nil || s.Port != 6543 {
		t.Fatalf("port as string: %+v %v", s, err)
	}
	for _, name := range []string{"not-json", "no-password", "missing"} {
		_, err := r.Resolve(ctx, name)
		if !errors.Is(err, ErrSecret) || strings.Contains(err.Error(), "p@ss") {
			t.Errorf("%s: got %v, want ErrSecret without the secret's contents", name, err)
		}
	}
}
