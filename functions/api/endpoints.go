package api

import (
	"context"
	"strings"

	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
)

// endpointInput holds the members of CreateEndpoint and ModifyEndpoint.
type endpointInput struct {
	EndpointArn               string
	EndpointIdentifier        string
	EndpointType              string
	EngineName                string
	Username                  string
	Password                  *string
	ServerName                string
	Port                      *int
	DatabaseName              string
	ExtraConnectionAttributes string
	KmsKeyId                  string //nolint:revive // the AWS member name
	CertificateArn            string
	SslMode                   string
	PostgreSQLSettings        *store.PostgreSQLSettings
	MySQLSettings             *store.MySQLSettings
	Tags                      []store.Tag
}

// engineSays answers a question about the engine named; an unknown name
// answers false (the API refuses those names before it asks).
func engineSays(name string, q func(*task.Engine) bool) bool {
	e, err := task.EngineOf(name)
	return err == nil && q(e)
}

func (h *Handler) createEndpoint(ctx context.Context, body []byte) (any, error) {
	var in endpointInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := identifier("EndpointIdentifier", in.EndpointIdentifier); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	rec := &store.EndpointRecord{Created: store.Time{Time: h.now()}}
	rec.EndpointIdentifier = in.EndpointIdentifier
	rec.EndpointArn = h.newARN(kindEndpoint)
	rec.Status = "active"
	switch strings.ToLower(in.EndpointType) {
	case "source", "target":
		rec.EndpointType = strings.ToUpper(in.EndpointType)
	case "":
		return nil, invalid("EndpointType is required: source or target")
	default:
		return nil, invalid("EndpointType %q is not valid: use source or target", clip(in.EndpointType))
	}
	rec.EngineName = in.EngineName
	if err := h.applyEndpoint(&in, rec); err != nil {
		return nil, err
	}
	if err := h.Store.CreateEndpoint(ctx, rec, in.Tags); err != nil {
		return nil, err
	}
	return map[string]any{"Endpoint": rec.Endpoint}, nil
}

// applyEndpoint copies the members a request sets onto rec and checks the
// result.
func (h *Handler) applyEndpoint(in *endpointInput, rec *store.EndpointRecord) error {
	if in.EngineName != "" {
		rec.EngineName = in.EngineName
	}
	names := strings.Join(task.EngineNames(), ", ")
	if rec.EngineName == "" {
		return invalid("EngineName is required: one of %s", names)
	}
	engine, err := task.EngineOf(rec.EngineName)
	if err != nil {
		return invalid("EngineName %q is not supported: use one of %s", clip(rec.EngineName), names)
	}
	rec.EngineDisplayName = engine.Names[rec.EngineName]
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&rec.Username, in.Username)
	set(&rec.ServerName, in.ServerName)
	set(&rec.DatabaseName, in.DatabaseName)
	set(&rec.ExtraConnectionAttributes, in.ExtraConnectionAttributes)
	set(&rec.KmsKeyId, in.KmsKeyId)
	set(&rec.CertificateArn, in.CertificateArn)
	set(&rec.SslMode, in.SslMode)
	if in.Port != nil {
		if *in.Port < 1 || *in.Port > 65535 {
			return invalid("Port %d is out of range: use 1 to 65535", *in.Port)
		}
		rec.Port = *in.Port
	}
	if in.PostgreSQLSettings != nil {
		rec.PostgreSQLSettings = in.PostgreSQLSettings
	}
	if in.MySQLSettings != nil {
		rec.MySQLSettings = in.MySQLSettings
	}
	if _, err := runtime.ServerIDAttribute(rec.ExtraConnectionAttributes); err != nil {
		return invalid("%v", err)
	}
	switch rec.SslMode {
	case "", "none", "require", "verify-ca", "verify-full":
	default:
		return invalid("SslMode %q is not valid: use none, require, verify-ca or verify-full", clip(rec.SslMode))
	}
	if ps := rec.PostgreSQLSettings; ps != nil {
		if ps.SlotName != "" && !slotRE.MatchString(ps.SlotName) {
			return invalid("PostgreSQLSettings.SlotName %q is not a valid slot name: use lower-case letters, digits and underscores, at most 63", clip(ps.SlotName))
		}
		if ps.HeartbeatSchema != "" {
			return invalid("PostgreSQLSettings.HeartbeatSchema is not supported: Sluice's heartbeat writes a logical decoding message to the WAL and creates no table, so there is no schema to choose. Remove HeartbeatSchema; HeartbeatEnable and HeartbeatFrequency work without it")
		}
		switch {
		case ps.ExecuteTimeout < 0 || ps.ExecuteTimeout > 86400:
			return invalid("PostgreSQLSettings.ExecuteTimeout %d is out of range: give seconds from 1 to 86400 (default 60)", ps.ExecuteTimeout)
		case ps.ExecuteTimeout > 0 && rec.EndpointType == "SOURCE":
			return invalid("PostgreSQLSettings.ExecuteTimeout is not supported on a source endpoint: Sluice sets no statement timeout on the source, whose copies and change stream run as long as they need (a silent stream is found in 10 s). Set it on the target endpoint, where it bounds each wait for the target")
		}
		if ps.HeartbeatFrequency < 0 || ps.HeartbeatFrequency > 60*24 {
			return invalid("PostgreSQLSettings.HeartbeatFrequency %d is out of range: give minutes from 1 to 1440 (DMS's default is %d)", ps.HeartbeatFrequency, task.DefaultHeartbeatFrequency)
		}
	}
	secret := rec.SecretID()
	if secret == "" {
		for _, m := range []struct{ name, v string }{{"ServerName", rec.ServerName}, {"DatabaseName", rec.DatabaseName}, {"Username", rec.Username}} {
			if m.v == "" && (m.name != "DatabaseName" || engineSays(rec.EngineName, func(e *task.Engine) bool { return e.NeedsDatabase })) {
				return invalid("%s is required unless PostgreSQLSettings.SecretsManagerSecretId names a secret that holds the connection", m.name)
			}
		}
	}
	if in.Password != nil {
		switch {
		case *in.Password == "":
			rec.SealedPassword = ""
		case secret != "":
			return combination("give either Password or SecretsManagerSecretId, not both: the secret holds the password")
		case h.Box == nil:
			return invalid("this server cannot store passwords: it was started without SLUICE_MASTER_KEY. Keep the password in AWS Secrets Manager and pass PostgreSQLSettings.SecretsManagerSecretId, or restart the server with SLUICE_MASTER_KEY set")
		default:
			sealed, err := h.Box.Seal(*in.Password, rec.EndpointArn)
			if err != nil {
				return err
			}
			rec.SealedPassword = sealed
		}
	}
	if secret != "" {
		rec.SealedPassword = ""
	}
	return nil
}

func (h *Handler) describeEndpoints(ctx context.Context, body []byte) (any, error) {
	return describe(body, listing[store.Endpoint]{
		key:  "Endpoints",
		noun: "Endpoints",
		list: func() ([]store.Endpoint, error) {
			all, err := h.Store.Endpoints(ctx)
			eps := make([]store.Endpoint, len(all))
			for i, r := range all {
				eps[i] = r.Endpoint
			}
			return eps, err
		},
		arn: func(e store.Endpoint) string { return e.EndpointArn },
		filters: []filter[store.Endpoint]{
			{"endpoint-arn", func(e store.Endpoint) string { return e.EndpointArn }},
			{"endpoint-type", func(e store.Endpoint) string { return e.EndpointType }},
			{"endpoint-id", func(e store.Endpoint) string { return e.EndpointIdentifier }},
			{"engine-name", func(e store.Endpoint) string { return e.EngineName }},
		},
	})
}

func (h *Handler) modifyEndpoint(ctx context.Context, body []byte) (any, error) {
	var in endpointInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if _, err := h.checkARN("EndpointArn", in.EndpointArn, kindEndpoint); err != nil {
		return nil, err
	}
	if in.EndpointIdentifier != "" {
		if err := identifier("EndpointIdentifier", in.EndpointIdentifier); err != nil {
			return nil, err
		}
	}
	if in.EndpointType != "" && !strings.EqualFold(in.EndpointType, "source") && !strings.EqualFold(in.EndpointType, "target") {
		return nil, invalid("EndpointType %q is not valid: use source or target", clip(in.EndpointType))
	}
	rec, err := h.Store.UpdateEndpoint(ctx, in.EndpointArn, func(rec *store.EndpointRecord) error {
		if in.EndpointIdentifier != "" {
			rec.EndpointIdentifier = in.EndpointIdentifier
		}
		if in.EndpointType != "" {
			rec.EndpointType = strings.ToUpper(in.EndpointType)
		}
		return h.applyEndpoint(&in, rec)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"Endpoint": rec.Endpoint}, nil
}

func (h *Handler) deleteEndpoint(ctx context.Context, body []byte) (any, error) {
	var in struct{ EndpointArn string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if _, err := h.checkARN("EndpointArn", in.EndpointArn, kindEndpoint); err != nil {
		return nil, err
	}
	rec, err := h.Store.DeleteEndpoint(ctx, in.EndpointArn)
	if err != nil {
		return nil, err
	}
	rec.Status = "deleting"
	return map[string]any{"Endpoint": rec.Endpoint}, nil
}

// nonNil makes an empty list marshal as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// omit makes an empty string marshal as an absent member.
func omit(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
