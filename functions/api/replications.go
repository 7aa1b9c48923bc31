package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/sluicedb/sluice/capacity/lifecycle"
	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/task"
)

type startInput struct {
	ReplicationConfigArn string
	StartReplicationType store.StartType
	CdcStartTime         *store.Time
	CdcStartPosition     string
	CdcStopPosition      string
}

func (h *Handler) startReplication(ctx context.Context, body []byte) (any, error) {
	var in startInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	rep, err := h.start(ctx, in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Replication": rep.Replication}, nil
}

func (h *Handler) start(ctx context.Context, in startInput) (*store.ReplicationRecord, error) {
	if _, err := h.checkARN("ReplicationConfigArn", in.ReplicationConfigArn, kindConfig); err != nil {
		return nil, err
	}
	switch in.StartReplicationType {
	case store.StartFirst, store.StartResume, store.StartReload:
	case "":
		return nil, invalid("StartReplicationType is required: start-replication (first run), resume-processing or reload-target")
	default:
		return nil, invalid("StartReplicationType %q is not valid: use start-replication, resume-processing or reload-target", clip(string(in.StartReplicationType)))
	}
	if in.CdcStartTime != nil && in.CdcStartPosition != "" {
		return nil, combination("give CdcStartTime or CdcStartPosition, not both")
	}
	if in.CdcStartPosition != "" {
		if _, err := runtime.ParsePosition(in.CdcStartPosition); err != nil {
			return nil, invalid("CdcStartPosition: %v", err)
		}
	}
	if in.CdcStopPosition != "" {
		if _, err := runtime.ParseStopPosition(in.CdcStopPosition); err != nil {
			return nil, invalid("CdcStopPosition: %v", err)
		}
	}
	cfg, err := h.Store.Config(ctx, in.ReplicationConfigArn)
	if err != nil {
		return nil, err
	}
	if in.CdcStartTime != nil {
		src, err := h.Store.Endpoint(ctx, cfg.SourceEndpointArn)
		if err != nil {
			return nil, err
		}
		if !engineSays(src.EngineName, func(e *task.Engine) bool { return e.StartsAtTime }) {
			// No position can be found from a time in PostgreSQL's WAL:
			// DMS refuses it the same way.
			return nil, invalid("CdcStartTime is not supported for a PostgreSQL source: give CdcStartPosition as an LSN (16/B374D848) or a checkpoint")
		}
	}
	if (in.CdcStartPosition != "" || in.CdcStopPosition != "" || in.CdcStartTime != nil) && cfg.ReplicationType == runtime.FullLoad {
		return nil, combination("CdcStartTime, CdcStartPosition and CdcStopPosition apply to cdc and full-load-and-cdc replications; %s is full-load", cfg.ReplicationConfigIdentifier)
	}
	if in.StartReplicationType == store.StartResume && cfg.ReplicationType == runtime.FullLoad {
		return nil, badState("resume-processing does not apply to a full-load replication (a partial load cannot be resumed): use reload-target to load %s again", cfg.ReplicationConfigIdentifier)
	}
	now := h.now()
	rep, err := h.Store.UpdateReplication(ctx, in.ReplicationConfigArn, func(rep *store.ReplicationRecord) error {
		to, err := lifecycle.Next(rep.Status, lifecycle.Start)
		if err != nil {
			return badState("replication %s is %s: it can be started only when it is created, stopped or failed. Stop it first (StopReplication) if it should start over", rep.ReplicationConfigIdentifier, rep.Status)
		}
		switch {
		case in.StartReplicationType == store.StartFirst && rep.Runs > 0:
			return badState("replication %s has run before: start-replication is only for the first run. Use resume-processing to continue from the last checkpoint, or reload-target to load the target again", rep.ReplicationConfigIdentifier)
		case in.StartReplicationType != store.StartFirst && rep.Runs == 0:
			return badState("replication %s has never run: its first start must be start-replication", rep.ReplicationConfigIdentifier)
		}
		rep.Runs++
		rep.Reload = in.StartReplicationType == store.StartReload
		if in.StartReplicationType != store.StartResume {
			// The target is loaded anew: an earlier table reload is moot.
			rep.ReloadTables, rep.ReloadToken, rep.ValidateTables = nil, "", nil
		}
		rep.Status = to
		rep.StartReplicationType = in.StartReplicationType
		rep.CdcStartTime, rep.CdcStartPosition, rep.CdcStopPosition = in.CdcStartTime, in.CdcStartPosition, in.CdcStopPosition
		rep.StopReason, rep.FailureMessages = "", nil
		rep.ReplicationUpdateTime = store.At(now)
		rep.ReplicationDeprovisionTime = nil
		stats := rep.ReplicationStats
		if stats == nil || in.StartReplicationType != store.StartResume {
			fresh := store.At(now)
			if stats != nil && in.StartReplicationType == store.StartResume {
				fresh = stats.FreshStartDate
			}
			stats = &store.ReplicationStats{FreshStartDate: fresh}
		}
		stats.StartDate, stats.StopDate = store.At(now), nil
		rep.ReplicationStats = stats
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.log().Info("replication starting", "replication", rep.ReplicationConfigIdentifier, "type", in.StartReplicationType)
	if err := h.Control.Start(ctx, in.ReplicationConfigArn); err != nil {
		return nil, fmt.Errorf("start replication %s: %w", rep.ReplicationConfigIdentifier, err)
	}
	return rep, nil
}

func (h *Handler) stopReplication(ctx context.Context, body []byte) (any, error) {
	var in struct{ ReplicationConfigArn string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	rep, err := h.stop(ctx, in.ReplicationConfigArn)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Replication": rep.Replication}, nil
}

func (h *Handler) stop(ctx context.Context, arn string) (*store.ReplicationRecord, error) {
	if _, err := h.checkARN("ReplicationConfigArn", arn, kindConfig); err != nil {
		return nil, err
	}
	rep, err := h.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
		to, err := lifecycle.Next(rep.Status, lifecycle.Stop)
		if err != nil {
			return badState("replication %s is %s: only a replication that is starting or running can be stopped", rep.ReplicationConfigIdentifier, rep.Status)
		}
		rep.Status = to
		rep.ReplicationUpdateTime = store.At(h.now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := h.Control.Stop(ctx, arn); err != nil {
		return nil, fmt.Errorf("stop replication %s: %w", rep.ReplicationConfigIdentifier, err)
	}
	return rep, nil
}

func (h *Handler) describeReplications(ctx context.Context, body []byte) (any, error) {
	return describe(body, listing[store.Replication]{
		key:  "Replications",
		noun: "replications",
		list: func() ([]store.Replication, error) {
			all, err := h.Store.Replications(ctx)
			out := make([]store.Replication, len(all))
			for i, r := range all {
				out[i] = r.Replication
			}
			return out, err
		},
		arn: func(r store.Replication) string { return r.ReplicationConfigArn },
		filters: []filter[store.Replication]{
			{"replication-config-arn", func(r store.Replication) string { return r.ReplicationConfigArn }},
			{"replication-config-id", func(r store.Replication) string { return r.ReplicationConfigIdentifier }},
		},
	})
}

func (h *Handler) describeTableStats(ctx context.Context, body []byte) (any, error) {
	var in struct {
		ReplicationConfigArn string
		Filters              []Filter
		MaxRecords           *int
		Marker               string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if _, err := h.checkARN("ReplicationConfigArn", in.ReplicationConfigArn, kindConfig); err != nil {
		return nil, err
	}
	match, err := filters(in.Filters, "schema-name", "table-name", "table-state")
	if err != nil {
		return nil, err
	}
	if _, err := h.Store.Config(ctx, in.ReplicationConfigArn); err != nil {
		return nil, err
	}
	all, err := h.Store.TableStats(ctx, in.ReplicationConfigArn)
	if err != nil {
		return nil, err
	}
	var out []store.TableStatistics
	for _, t := range all {
		if match("schema-name", t.SchemaName) && match("table-name", t.TableName) && match("table-state", t.TableState) {
			t.EstimatedRows = 0 // not a DMS member
			out = append(out, t)
		}
	}
	if len(out) == 0 && len(in.Filters) > 0 {
		return nil, noMatch("table statistics")
	}
	out, next, err := page(out, func(t store.TableStatistics) string { return t.SchemaName + "." + t.TableName }, in.Marker, in.MaxRecords)
	if err != nil {
		return nil, err
	}
	return map[string]any{"ReplicationConfigArn": in.ReplicationConfigArn, "ReplicationTableStatistics": nonNil(out), "Marker": omit(next)}, nil
}

func (h *Handler) reloadTables(ctx context.Context, body []byte) (any, error) {
	var in struct {
		ReplicationConfigArn string
		TablesToReload       []struct{ SchemaName, TableName string }
		ReloadOption         string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if _, err := h.checkARN("ReplicationConfigArn", in.ReplicationConfigArn, kindConfig); err != nil {
		return nil, err
	}
	if len(in.TablesToReload) == 0 {
		return nil, invalid("TablesToReload is required: the tables (SchemaName, TableName) to load again")
	}
	validateOnly := false
	switch in.ReloadOption {
	case "", "data-reload":
	case "validate-only":
		validateOnly = true
	default:
		return nil, invalid("ReloadOption %q is not valid: use data-reload or validate-only", clip(in.ReloadOption))
	}
	notRunning := func(rep *store.ReplicationRecord) error {
		if lifecycle.Can(rep.Status, lifecycle.Reload) {
			return nil
		}
		if validateOnly {
			return badState("replication %s is %s: tables can be validated only while it is running, against the position it has applied. Start it first (start-replication or resume-processing)", rep.ReplicationConfigIdentifier, rep.Status)
		}
		return badState("replication %s is %s: tables can be reloaded only while it is running. Start it first, or start it with reload-target to load every table again", rep.ReplicationConfigIdentifier, rep.Status)
	}
	rep, err := h.Store.Replication(ctx, in.ReplicationConfigArn)
	if err != nil {
		return nil, err
	}
	if err := notRunning(rep); err != nil {
		return nil, err
	}
	known := map[string]bool{}
	stats, err := h.Store.TableStats(ctx, in.ReplicationConfigArn)
	if err != nil {
		return nil, err
	}
	for _, t := range stats {
		known[t.SchemaName+"."+t.TableName] = true
	}
	var names []string
	seen := map[string]bool{}
	for _, t := range in.TablesToReload {
		if t.SchemaName == "" || t.TableName == "" {
			return nil, invalid("each of TablesToReload needs SchemaName and TableName")
		}
		name := t.SchemaName + "." + t.TableName
		if seen[name] {
			continue
		}
		seen[name] = true
		if !known[name] {
			return nil, invalid("table %s is not one this replication replicates: DescribeReplicationTableStatistics lists its tables (source names)", clip(name))
		}
		names = append(names, name)
	}
	rep, err = h.Store.UpdateReplication(ctx, in.ReplicationConfigArn, func(rep *store.ReplicationRecord) error {
		if err := notRunning(rep); err != nil {
			return err
		}
		if validateOnly {
			// The tables are compared, not touched: no reload token.
			rep.ValidateTables = names
			return nil
		}
		rep.ReloadTables, rep.ReloadToken = names, h.now().UTC().Format("20060102T150405.000000000Z")
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.log().Info("reloading tables", "replication", rep.ReplicationConfigIdentifier, "tables", names, "option", in.ReloadOption)
	if err := h.Control.Reload(ctx, in.ReplicationConfigArn); err != nil {
		return nil, fmt.Errorf("reload tables of %s: %w", rep.ReplicationConfigIdentifier, err)
	}
	return map[string]any{"ReplicationConfigArn": in.ReplicationConfigArn}, nil
}

// serveREST answers the REST aliases for callers that cannot sign JSON 1.1
// requests: POST /replications/{id}/start, POST /replications/{id}/stop,
// GET /replications/{id}. {id} is the config's identifier or ARN.
func (h *Handler) serveREST(w http.ResponseWriter, r *http.Request, body []byte) {
	rest := strings.TrimPrefix(r.URL.Path, "/replications/")
	id, action, _ := strings.Cut(rest, "/")
	ctx := r.Context()
	op := func(h *Handler, ctx context.Context, body []byte) (any, error) {
		arn, err := h.resolveConfig(ctx, id)
		if err != nil {
			return nil, err
		}
		var rep *store.ReplicationRecord
		switch {
		case r.Method == http.MethodGet && action == "":
			return h.replicationView(ctx, arn)
		case r.Method == http.MethodPost && action == "start":
			in := startInput{StartReplicationType: store.StartResume}
			if err := decode(body, &in); err != nil {
				return nil, err
			}
			in.ReplicationConfigArn = arn
			rep, err = h.start(ctx, in)
		case r.Method == http.MethodPost && action == "stop":
			rep, err = h.stop(ctx, arn)
		default:
			return nil, newFault("UnknownOperationException", http.StatusNotFound, "%s %s is not an operation: use POST /replications/{id}/start, POST /replications/{id}/stop or GET /replications/{id}", r.Method, r.URL.Path)
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"Replication": rep.Replication}, nil
	}
	h.respond(w, ctx, op, body)
}

// replicationView is what GET /replications/{id} shows: the replication,
// its table statistics with the row estimates progress bars need, and the
// latency DMS reports only through CloudWatch. `sluice watch` reads it.
func (h *Handler) replicationView(ctx context.Context, arn string) (any, error) {
	rep, err := h.Store.Replication(ctx, arn)
	if err != nil {
		return nil, err
	}
	tables, err := h.Store.TableStats(ctx, arn)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"Replication":                rep.Replication,
		"CDCLatencyTarget":           rep.CDCLatencyTarget,
		"ReplicationTableStatistics": nonNil(tables),
	}, nil
}

// resolveConfig turns a config identifier or ARN into its ARN.
func (h *Handler) resolveConfig(ctx context.Context, id string) (string, error) {
	if strings.HasPrefix(id, "arn:") {
		_, err := h.checkARN("replication", id, kindConfig)
		return id, err
	}
	if err := identifier("replication identifier", id); err != nil {
		return "", err
	}
	cfgs, err := h.Store.Configs(ctx)
	if err != nil {
		return "", err
	}
	for _, c := range cfgs {
		if c.ReplicationConfigIdentifier == id {
			return c.ReplicationConfigArn, nil
		}
	}
	return "", notFound("replication config %s not found", id)
}

// StartReplication starts a replication as the operation of that name
// does, for callers in the same process (scheduled starts). startType
// empty means start-replication on the first run, resume-processing after.
func (h *Handler) StartReplication(ctx context.Context, arn string, startType store.StartType) (*store.ReplicationRecord, error) {
	if startType == "" {
		rep, err := h.Store.Replication(ctx, arn)
		if err != nil {
			return nil, err
		}
		startType = store.StartResume
		if rep.Runs == 0 {
			startType = store.StartFirst
		}
	}
	return h.start(ctx, startInput{ReplicationConfigArn: arn, StartReplicationType: startType})
}

// StopReplication stops a replication as the operation of that name does.
func (h *Handler) StopReplication(ctx context.Context, arn string) (*store.ReplicationRecord, error) {
	return h.stop(ctx, arn)
}

// IsInvalidState says whether err is the API's InvalidResourceStateFault:
// the replication is not in a status the request applies to.
func IsInvalidState(err error) bool {
	var f *fault
	return errors.As(err, &f) && f.code == "InvalidResourceStateFault"
}
