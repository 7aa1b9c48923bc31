package control

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
)

// task builds the replicator's task document for replication arn, with the
// endpoints' credentials opened or resolved. It holds passwords: it goes
// only to the launcher.
func (s *Server) task(ctx context.Context, arn string) (*task.Task, *store.Config, error) {
	cfg, err := s.Store.Config(ctx, arn)
	if err != nil {
		return nil, nil, err
	}
	rep, err := s.Store.Replication(ctx, arn)
	if err != nil {
		return nil, nil, err
	}
	t := &task.Task{
		ReplicationConfigIdentifier: cfg.ReplicationConfigIdentifier,
		ReplicationType:             cfg.ReplicationType,
		TableMappings:               jsonString(cfg.TableMappings),
		ReplicationSettings:         jsonString(cfg.ReplicationSettings),
		CdcStartPosition:            rep.CdcStartPosition,
		CdcStopPosition:             rep.CdcStopPosition,
		CdcStartTime:                startTime(rep.CdcStartTime),
		ReloadTables:                rep.ReloadTables,
		ReloadToken:                 rep.ReloadToken,
		ValidateTables:              rep.ValidateTables,
	}
	if rep.Reload {
		t.StartReplicationType = string(store.StartReload)
	}
	if t.SourceEndpoint, err = s.endpoint(ctx, cfg.SourceEndpointArn); err != nil {
		return nil, nil, fmt.Errorf("source endpoint: %w", err)
	}
	if t.TargetEndpoint, err = s.endpoint(ctx, cfg.TargetEndpointArn); err != nil {
		return nil, nil, fmt.Errorf("target endpoint: %w", err)
	}
	return t, cfg, nil
}

func startTime(t *store.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// jsonString is s as a JSON string, nil for none: the task carries the
// config's documents as the API received them.
func jsonString(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	b, _ := json.Marshal(s)
	return b
}

// endpoint is the task's view of endpoint arn, its password opened (sealed
// with SLUICE_MASTER_KEY) or resolved (Secrets Manager).
func (s *Server) endpoint(ctx context.Context, arn string) (task.Endpoint, error) {
	rec, err := s.Store.Endpoint(ctx, arn)
	if err != nil {
		return task.Endpoint{}, err
	}
	return s.endpointOf(ctx, rec)
}

// endpointOf is the task's view of endpoint record rec.
func (s *Server) endpointOf(ctx context.Context, rec *store.EndpointRecord) (task.Endpoint, error) {
	ep := task.Endpoint{
		EndpointIdentifier: rec.EndpointIdentifier, EngineName: rec.EngineName,
		ServerName: rec.ServerName, Port: rec.Port, DatabaseName: rec.DatabaseName,
		Username: rec.Username, SslMode: rec.SslMode,
	}
	// Every replication gets its own slot unless the endpoint names one: a
	// config identifier is unique, so the default slot is too.
	if ps := rec.PostgreSQLSettings; ps != nil && (ps.SlotName != "" || ps.PluginName != "" || ps.HeartbeatEnable || ps.ExecuteTimeout > 0) {
		ep.PostgreSQLSettings = &task.PostgreSQLSettings{SlotName: ps.SlotName, PluginName: ps.PluginName,
			HeartbeatEnable: ps.HeartbeatEnable, HeartbeatFrequency: ps.HeartbeatFrequency, ExecuteTimeout: ps.ExecuteTimeout}
	}
	if id, err := runtime.ServerIDAttribute(rec.ExtraConnectionAttributes); err != nil {
		return ep, fmt.Errorf("endpoint %s: %w", rec.EndpointIdentifier, err)
	} else if id != 0 {
		ep.MySQLSettings = &task.MySQLSettings{ServerId: id}
	}
	switch {
	case rec.SecretID() != "":
		if s.Secrets == nil {
			return ep, fmt.Errorf("endpoint %s keeps its credentials in Secrets Manager secret %s, but this server has no Secrets Manager client (set AWS_REGION and AWS credentials)", rec.EndpointIdentifier, rec.SecretID())
		}
		sec, err := s.Secrets.Resolve(ctx, rec.SecretID())
		if err != nil {
			return ep, fmt.Errorf("endpoint %s: %w", rec.EndpointIdentifier, err)
		}
		ep.Password = sec.Password
		fill := func(dst *string, v string) {
			if *dst == "" {
				*dst = v
			}
		}
		fill(&ep.Username, sec.Username)
		fill(&ep.ServerName, sec.Host)
		fill(&ep.DatabaseName, sec.DBName)
		if ep.Port == 0 {
			ep.Port = sec.Port
		}
	case rec.SealedPassword != "":
		if s.Box == nil {
			return ep, fmt.Errorf("endpoint %s has a stored password, but this server was started without SLUICE_MASTER_KEY: start it with the key the password was stored with", rec.EndpointIdentifier)
		}
		pw, err := s.Box.Open(rec.SealedPassword, rec.EndpointArn)
		if err != nil {
			return ep, fmt.Errorf("endpoint %s: the stored password cannot be opened with this SLUICE_MASTER_KEY (was the key changed?): modify the endpoint with its password again: %w", rec.EndpointIdentifier, err)
		}
		ep.Password = pw
	}
	return ep, nil
}
