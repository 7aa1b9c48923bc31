package api

import (
	"context"
	"fmt"
	"slices"

	"github.com/sluicedb/sluice/capacity/lifecycle"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mapping"
)

// configInput holds the members of CreateReplicationConfig and
// ModifyReplicationConfig.
type configInput struct {
	ReplicationConfigArn        string
	ReplicationConfigIdentifier string
	SourceEndpointArn           string
	TargetEndpointArn           string
	ComputeConfig               *store.ComputeConfig
	ReplicationType             string
	TableMappings               *string
	ReplicationSettings         *string
	SupplementalSettings        *string
	ResourceIdentifier          string
	Tags                        []store.Tag
}

// capacityUnits are the values DMS Serverless accepts for capacity units.
var capacityUnits = []int{1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 384}

func checkCompute(c *store.ComputeConfig) error {
	if c == nil {
		return invalid("ComputeConfig is required, with MaxCapacityUnits (one of %v)", capacityUnits)
	}
	if !slices.Contains(capacityUnits, c.MaxCapacityUnits) {
		return invalid("ComputeConfig.MaxCapacityUnits %d is not valid: use one of %v", c.MaxCapacityUnits, capacityUnits)
	}
	if c.MinCapacityUnits != 0 {
		if !slices.Contains(capacityUnits, c.MinCapacityUnits) {
			return invalid("ComputeConfig.MinCapacityUnits %d is not valid: use one of %v", c.MinCapacityUnits, capacityUnits)
		}
		if c.MinCapacityUnits > c.MaxCapacityUnits {
			return combination("ComputeConfig.MinCapacityUnits %d is above MaxCapacityUnits %d", c.MinCapacityUnits, c.MaxCapacityUnits)
		}
	}
	return nil
}

func checkType(t string) error {
	switch t {
	case runtime.FullLoad, runtime.CDC, runtime.FullLoadAndCDC:
		return nil
	case "":
		return invalid("ReplicationType is required: full-load, cdc or full-load-and-cdc")
	}
	return invalid("ReplicationType %q is not valid: use full-load, cdc or full-load-and-cdc", clip(t))
}

// checkDocuments parses the table mappings and settings the way the
// replicator will, so a config that is accepted can run.
func checkDocuments(typ, mappings, settings string) error {
	if mappings == "" {
		return invalid("TableMappings is required: a JSON document with at least one selection rule")
	}
	if _, err := mapping.Parse([]byte(mappings)); err != nil {
		return invalid("TableMappings: %v", err)
	}
	set, err := runtime.ParseSettings([]byte(settings))
	if err == nil {
		err = set.CheckType(typ)
	}
	if err != nil {
		return invalid("ReplicationSettings: %v", err)
	}
	return nil
}

// checkEndpoints checks that the endpoints exist and face the right way.
func (h *Handler) checkEndpoints(ctx context.Context, src, tgt string) error {
	for _, e := range []struct{ member, arn, typ string }{{"SourceEndpointArn", src, "SOURCE"}, {"TargetEndpointArn", tgt, "TARGET"}} {
		if _, err := h.checkARN(e.member, e.arn, kindEndpoint); err != nil {
			return err
		}
		ep, err := h.Store.Endpoint(ctx, e.arn)
		if err != nil {
			return fmt.Errorf("%s: %w", e.member, err)
		}
		if ep.EndpointType != e.typ {
			return invalid("%s %s is a %s endpoint; it must be a %s endpoint", e.member, ep.EndpointIdentifier, ep.EndpointType, e.typ)
		}
	}
	return nil
}

func (h *Handler) createConfig(ctx context.Context, body []byte) (any, error) {
	var in configInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := identifier("ReplicationConfigIdentifier", in.ReplicationConfigIdentifier); err != nil {
		return nil, err
	}
	if err := checkType(in.ReplicationType); err != nil {
		return nil, err
	}
	if err := checkCompute(in.ComputeConfig); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	mappings, settings := deref(in.TableMappings), deref(in.ReplicationSettings)
	if err := checkDocuments(in.ReplicationType, mappings, settings); err != nil {
		return nil, err
	}
	if err := h.checkEndpoints(ctx, in.SourceEndpointArn, in.TargetEndpointArn); err != nil {
		return nil, err
	}
	now := store.At(h.now())
	cfg := &store.Config{
		ReplicationConfigIdentifier: in.ReplicationConfigIdentifier,
		ReplicationConfigArn:        h.newARN(kindConfig),
		SourceEndpointArn:           in.SourceEndpointArn,
		TargetEndpointArn:           in.TargetEndpointArn,
		ReplicationType:             in.ReplicationType,
		ComputeConfig:               in.ComputeConfig,
		ReplicationSettings:         settings,
		SupplementalSettings:        deref(in.SupplementalSettings),
		TableMappings:               mappings,
		ReplicationConfigCreateTime: now,
		ReplicationConfigUpdateTime: now,
	}
	rep := &store.ReplicationRecord{}
	rep.Replication = replicationOf(cfg)
	rep.Status = store.StatusCreated
	rep.ReplicationCreateTime, rep.ReplicationUpdateTime = now, now
	if err := h.Store.CreateConfig(ctx, cfg, rep, in.Tags); err != nil {
		return nil, err
	}
	return map[string]any{"ReplicationConfig": cfg}, nil
}

// replicationOf returns a replication's members that come from its config.
func replicationOf(cfg *store.Config) store.Replication {
	return store.Replication{
		ReplicationConfigIdentifier: cfg.ReplicationConfigIdentifier,
		ReplicationConfigArn:        cfg.ReplicationConfigArn,
		SourceEndpointArn:           cfg.SourceEndpointArn,
		TargetEndpointArn:           cfg.TargetEndpointArn,
		ReplicationType:             cfg.ReplicationType,
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (h *Handler) describeConfigs(ctx context.Context, body []byte) (any, error) {
	return describe(body, listing[*store.Config]{
		key:  "ReplicationConfigs",
		noun: "replication configs",
		list: func() ([]*store.Config, error) { return h.Store.Configs(ctx) },
		arn:  func(c *store.Config) string { return c.ReplicationConfigArn },
		filters: []filter[*store.Config]{
			{"replication-config-arn", func(c *store.Config) string { return c.ReplicationConfigArn }},
			{"replication-config-id", func(c *store.Config) string { return c.ReplicationConfigIdentifier }},
		},
	})
}

func (h *Handler) modifyConfig(ctx context.Context, body []byte) (any, error) {
	var in configInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if _, err := h.checkARN("ReplicationConfigArn", in.ReplicationConfigArn, kindConfig); err != nil {
		return nil, err
	}
	if in.ReplicationConfigIdentifier != "" {
		if err := identifier("ReplicationConfigIdentifier", in.ReplicationConfigIdentifier); err != nil {
			return nil, err
		}
	}
	if in.ReplicationType != "" {
		if err := checkType(in.ReplicationType); err != nil {
			return nil, err
		}
	}
	if in.ComputeConfig != nil {
		if err := checkCompute(in.ComputeConfig); err != nil {
			return nil, err
		}
	}
	cur, err := h.Store.Config(ctx, in.ReplicationConfigArn)
	if err != nil {
		return nil, err
	}
	src, tgt := cur.SourceEndpointArn, cur.TargetEndpointArn
	if in.SourceEndpointArn != "" {
		src = in.SourceEndpointArn
	}
	if in.TargetEndpointArn != "" {
		tgt = in.TargetEndpointArn
	}
	if src != cur.SourceEndpointArn || tgt != cur.TargetEndpointArn {
		if err := h.checkEndpoints(ctx, src, tgt); err != nil {
			return nil, err
		}
	}
	cfg, _, err := h.Store.UpdateConfig(ctx, in.ReplicationConfigArn, func(cfg *store.Config, rep *store.ReplicationRecord) error {
		if !lifecycle.Can(rep.Status, lifecycle.Modify) {
			return badState("replication config %s cannot be modified while its replication is %s: stop it first (StopReplication) and modify it once it is stopped", cfg.ReplicationConfigIdentifier, rep.Status)
		}
		if in.ReplicationConfigIdentifier != "" {
			cfg.ReplicationConfigIdentifier = in.ReplicationConfigIdentifier
		}
		if in.ReplicationType != "" {
			cfg.ReplicationType = in.ReplicationType
		}
		if in.ComputeConfig != nil {
			cfg.ComputeConfig = in.ComputeConfig
		}
		if in.TableMappings != nil {
			cfg.TableMappings = *in.TableMappings
		}
		if in.ReplicationSettings != nil {
			cfg.ReplicationSettings = *in.ReplicationSettings
		}
		if in.SupplementalSettings != nil {
			cfg.SupplementalSettings = *in.SupplementalSettings
		}
		cfg.SourceEndpointArn, cfg.TargetEndpointArn = src, tgt
		if err := checkDocuments(cfg.ReplicationType, cfg.TableMappings, cfg.ReplicationSettings); err != nil {
			return err
		}
		cfg.ReplicationConfigUpdateTime = store.At(h.now())
		from := replicationOf(cfg)
		rep.ReplicationConfigIdentifier, rep.ReplicationType = from.ReplicationConfigIdentifier, from.ReplicationType
		rep.SourceEndpointArn, rep.TargetEndpointArn = from.SourceEndpointArn, from.TargetEndpointArn
		rep.ReplicationUpdateTime = cfg.ReplicationConfigUpdateTime
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"ReplicationConfig": cfg}, nil
}

func (h *Handler) deleteConfig(ctx context.Context, body []byte) (any, error) {
	var in struct{ ReplicationConfigArn string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if _, err := h.checkARN("ReplicationConfigArn", in.ReplicationConfigArn, kindConfig); err != nil {
		return nil, err
	}
	cfg, err := h.Store.DeleteConfig(ctx, in.ReplicationConfigArn, func(cfg *store.Config, rep *store.ReplicationRecord) error {
		if !lifecycle.Can(rep.Status, lifecycle.Delete) {
			return badState("replication config %s cannot be deleted while its replication is %s: stop it first (StopReplication)", cfg.ReplicationConfigIdentifier, rep.Status)
		}
		if pd := rep.ProvisionData; pd != nil && pd.ProvisionState != "" && pd.ProvisionState != store.Deprovisioned {
			return badState("replication config %s cannot be deleted while its capacity is %s: wait until ProvisionData.ProvisionState is deprovisioned", cfg.ReplicationConfigIdentifier, pd.ProvisionState)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"ReplicationConfig": cfg}, nil
}
