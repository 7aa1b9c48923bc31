package task

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/mapping"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
	"github.com/sluicedb/sluice/runtime/validate"
)

// ErrInvalid marks a task description that cannot run as written.
var ErrInvalid = errors.New("invalid replication task")

// Task is one replication, in the member names of the DMS API.
type Task struct {
	ReplicationConfigIdentifier string
	ReplicationType             string
	SourceEndpoint              Endpoint
	TargetEndpoint              Endpoint
	// TableMappings and ReplicationSettings are JSON documents; as in the
	// DMS API they may be given as strings, or inline as objects.
	TableMappings       json.RawMessage
	ReplicationSettings json.RawMessage
	CdcStartPosition    string
	// CdcStartTime (RFC 3339) starts a CDC replication at the first source
	// transaction committed at or after it.
	CdcStartTime string `json:",omitempty"`
	// CdcStopPosition commit_time:… ends the replication before the first
	// source transaction committed after that time. (server_time:… is the
	// control plane's: it stops the replicator when its clock passes.)
	CdcStopPosition string `json:",omitempty"`
	// StartReplicationType reload-target loads the target again from
	// scratch, whatever position it stores.
	StartReplicationType string `json:",omitempty"`
	// ReloadTables (source names, schema.table) are loaded again before
	// the change stream resumes (ReloadReplicationTables); ReloadToken
	// names the request so that a resume does not repeat it.
	ReloadTables []string `json:",omitempty"`
	ReloadToken  string   `json:",omitempty"`
	// ValidateTables (source names) are validated again, untouched
	// (ReloadReplicationTables validate-only).
	ValidateTables []string `json:",omitempty"`
	// Fence is the fencing token of the lease the replicator took for
	// this replication (0 when it runs standalone, without a lease). It
	// is the replicator's own, never part of the document.
	Fence int64 `json:"-"`
}

// Endpoint is a database endpoint as DMS CreateEndpoint describes one.
type Endpoint struct {
	EndpointIdentifier string
	EngineName         string
	ServerName         string
	Port               int
	DatabaseName       string
	Username           string
	Password           string `json:",omitempty"`
	SslMode            string
	PostgreSQLSettings *PostgreSQLSettings `json:",omitempty"`
	MySQLSettings      *MySQLSettings      `json:",omitempty"`
}

// MySQLSettings is the subset of DMS's MySQLSettings Sluice uses.
type MySQLSettings struct {
	// ServerId is the replica id the binlog reader registers with. It
	// must differ from every server's and every other reader's; by
	// default it is derived from the replication's identifier.
	ServerId uint32 //nolint:revive // DMS's member name
}

// taskSource is what a task asks of its source: the replicator's part, and the
// pre-migration check.
type taskSource interface {
	runtime.Source
	runtime.Checker
}

// source returns the task's source, not yet connected. The endpoint's
// engine was checked by validate or by the API that stored it.
func (t *Task) source(settings runtime.Settings, rules *mapping.Rules, log *slog.Logger) (taskSource, error) {
	eng, err := EngineOf(t.SourceEndpoint.EngineName)
	if err != nil {
		return nil, fmt.Errorf("%w: SourceEndpoint: %v", ErrInvalid, err)
	}
	return eng.source(t, settings, rules, log), nil
}

// DropSource drops what replications of t capture changes with on its
// source: PostgreSQL's slot and publications, named after the config
// identifier. A slot the endpoint names (PostgreSQLSettings.SlotName) is
// the user's and stays; MySQL and MariaDB keep nothing for a replica.
func DropSource(ctx context.Context, t *Task) error {
	src, err := t.source(runtime.DefaultSettings(), &mapping.Rules{}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	type dropper interface {
		Drop(context.Context) error
		DropPublications(context.Context) error
	}
	d, ok := src.(dropper)
	switch {
	case !ok:
		return nil
	case t.SourceEndpoint.PostgreSQLSettings != nil && t.SourceEndpoint.PostgreSQLSettings.SlotName != "":
		return d.DropPublications(ctx)
	}
	return d.Drop(ctx)
}

// Retention is what a replication's slot holds on a PostgreSQL source.
type Retention struct {
	Slot string
	// Bytes is the WAL from the slot's restart position to the source's
	// current one: what the source cannot recycle.
	Bytes int64
	// Lost says the source invalidated the slot (wal_status lost,
	// max_slot_wal_keep_size exceeded): the changes since the last
	// checkpoint are gone.
	Lost bool
	// KeepBytes is the source's max_slot_wal_keep_size, -1 when unlimited.
	KeepBytes int64
}

// SourceRetention measures what t's slot holds on its source; nil when
// the source keeps nothing for it (MySQL, MariaDB) or the slot does not
// exist.
func SourceRetention(ctx context.Context, t *Task) (*Retention, error) {
	eng, err := EngineOf(t.SourceEndpoint.EngineName)
	if err != nil || eng.Family != FamilyPostgres {
		return nil, err
	}
	slot := slotName(t)
	conn, err := pgx.Connect(ctx, t.SourceEndpoint.ConnString())
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	r := &Retention{Slot: slot}
	var status *string
	err = conn.QueryRow(ctx, `SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, wal_status,
  (SELECT setting::bigint FROM pg_settings WHERE name = 'max_slot_wal_keep_size')
FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&r.Bytes, &status, &r.KeepBytes)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if r.KeepBytes > 0 {
		r.KeepBytes <<= 20 // the setting is in MB
	}
	r.Lost = status != nil && *status == "lost"
	return r, nil
}

// target returns the task's target.
func (t *Task) target(ctx context.Context, settings runtime.Settings) (runtime.Target, error) {
	eng, err := EngineOf(t.TargetEndpoint.EngineName)
	if err != nil {
		return nil, fmt.Errorf("%w: TargetEndpoint: %v", ErrInvalid, err)
	}
	return eng.target(ctx, &t.TargetEndpoint, targetConfig{
		controlSchema: settings.ControlTablesSettings.ControlSchema,
		workers:       settings.FullLoadSettings.MaxFullLoadSubTasks,
		fence:         t.Fence, task: t.ReplicationConfigIdentifier,
	})
}

// SourceTables lists the tables the task's mappings select on its source,
// as the replicator would see them, and closes the connection.
func SourceTables(ctx context.Context, t *Task, log *slog.Logger) ([]*runtime.Table, error) {
	rules, err := mapping.Parse(document(t.TableMappings))
	if err != nil {
		return nil, fmt.Errorf("%w: TableMappings: %v", ErrInvalid, err)
	}
	settings, err := runtime.ParseSettings(document(t.ReplicationSettings))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	src, err := t.source(settings, rules, log)
	if err != nil {
		return nil, err
	}
	defer src.Close(context.WithoutCancel(ctx))
	tables, _, err := src.Tables(ctx, rules.Selected)
	return tables, err
}

// Size fills in the settings a capacity plan decides where the task's own
// ReplicationSettings are silent: the change buffer (MemoryLimitTotal,
// MiB) and the full load's parallelism (MaxFullLoadSubTasks).
func (t *Task) Size(bufferMiB, subTasks int) error {
	doc := map[string]any{}
	if d := document(t.ReplicationSettings); len(bytes.TrimSpace(d)) > 0 {
		if err := json.Unmarshal(d, &doc); err != nil {
			return fmt.Errorf("%w: ReplicationSettings is not a JSON object: %v", ErrInvalid, err)
		}
	}
	section := func(name string) map[string]any {
		s, _ := doc[name].(map[string]any)
		if s == nil {
			s = map[string]any{}
			doc[name] = s
		}
		return s
	}
	if s := section("ChangeProcessingTuning"); s["MemoryLimitTotal"] == nil && bufferMiB > 0 {
		s["MemoryLimitTotal"] = bufferMiB
	}
	if s := section("FullLoadSettings"); s["MaxFullLoadSubTasks"] == nil && subTasks > 0 {
		s["MaxFullLoadSubTasks"] = subTasks
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	t.ReplicationSettings = b
	return nil
}

// CheckSource lists what would stop the task's change stream on its source
// (see runtime.Checker); a full-load task has nothing to check.
func CheckSource(ctx context.Context, t *Task, log *slog.Logger) []string {
	if t.ReplicationType == runtime.FullLoad {
		return nil
	}
	rules, err := mapping.Parse(document(t.TableMappings))
	if err != nil {
		return []string{fmt.Sprintf("TableMappings: %v", err)}
	}
	settings, err := runtime.ParseSettings(document(t.ReplicationSettings))
	if err != nil {
		return []string{err.Error()}
	}
	src, err := t.source(settings, rules, log)
	if err != nil {
		return []string{err.Error()}
	}
	defer src.Close(context.WithoutCancel(ctx))
	return src.Check(ctx)
}

// CheckTarget is the pre-migration check of t's target: it must take
// writes. It creates the control schema and table the replicator would
// create first (awsdms_txn_state), which proves the privileges, and finds a
// read-only server or a standby.
func CheckTarget(ctx context.Context, t *Task, log *slog.Logger) []string {
	settings, err := runtime.ParseSettings(document(t.ReplicationSettings))
	if err != nil {
		return []string{err.Error()}
	}
	e := t.TargetEndpoint
	// The check's target is no replicator's: no fence, one session.
	check := *t
	check.Fence = 0
	settings.FullLoadSettings.MaxFullLoadSubTasks = 1
	tgt, err := check.target(ctx, settings)
	if err != nil {
		return []string{err.Error()}
	}
	defer tgt.Close(context.WithoutCancel(ctx))
	if _, err := tgt.State(ctx, t.ReplicationConfigIdentifier); err != nil {
		return []string{fmt.Sprintf("the target endpoint %s does not take writes: %v. Fix: point the endpoint at a primary (not a read replica or standby, and not read_only), and let user %s create schemas and tables in the database (GRANT CREATE ON DATABASE … on PostgreSQL; GRANT ALL ON *.* or on the target databases on MySQL)", e.EndpointIdentifier, err, e.Username)}
	}
	return nil
}

// MySQLServer is where a MySQL-protocol endpoint is. It holds the
// password: never log it.
func (e *Endpoint) MySQLServer() mysqlconn.Server {
	return mysqlconn.Server{Host: e.ServerName, Port: e.Port, User: e.Username, Password: e.Password}
}

// serverID derives a binlog replica id from the replication's identifier,
// in a range servers rarely use.
func serverID(id string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return 1<<30 | h.Sum32()>>2
}

// PostgreSQLSettings is the subset of DMS's PostgreSQLSettings Sluice uses.
type PostgreSQLSettings struct {
	SlotName   string
	PluginName string
	// HeartbeatEnable writes a record to the source's WAL every
	// HeartbeatFrequency minutes (5 when 0) while the stream runs.
	HeartbeatEnable    bool `json:",omitempty"`
	HeartbeatFrequency int  `json:",omitempty"`
	// ExecuteTimeout, on a target endpoint, is how many seconds one
	// call of the applier may wait for the target
	// (runtime.DefaultTargetTimeout when 0).
	ExecuteTimeout int `json:",omitempty"`
}

// DefaultHeartbeatFrequency is DMS's HeartbeatFrequency default, in minutes.
const DefaultHeartbeatFrequency = 5

// heartbeat is how often the stream from t's source writes a heartbeat, or
// 0 for none.
func heartbeat(t *Task) time.Duration {
	ps := t.SourceEndpoint.PostgreSQLSettings
	if ps == nil || !ps.HeartbeatEnable {
		return 0
	}
	if ps.HeartbeatFrequency > 0 {
		return time.Duration(ps.HeartbeatFrequency) * time.Minute
	}
	return DefaultHeartbeatFrequency * time.Minute
}

// Parse reads a task file.
func Parse(doc []byte) (*Task, error) {
	var t Task
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("%w: the task is not valid JSON of the expected shape: %v", ErrInvalid, err)
	}
	return &t, nil
}

// document accepts a JSON document given inline or as a JSON string.
func document(raw json.RawMessage) []byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return []byte(s)
		}
	}
	return raw
}

var identRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{0,254}$`)

// Run validates the task and replicates until ctx ends.
func Run(ctx context.Context, t *Task, stats *runtime.Stats, log *slog.Logger) error {
	rep, cleanup, err := Build(ctx, t, stats, log)
	if err != nil {
		return err
	}
	defer cleanup()
	return rep.Run(ctx)
}

// Build validates the task and returns its replicator, ready to Run, and a
// function that releases its connections.
func Build(ctx context.Context, t *Task, stats *runtime.Stats, log *slog.Logger) (*runtime.Replicator, func(), error) {
	if !identRE.MatchString(t.ReplicationConfigIdentifier) || strings.HasSuffix(t.ReplicationConfigIdentifier, "-") || strings.Contains(t.ReplicationConfigIdentifier, "--") {
		return nil, nil, fmt.Errorf("%w: ReplicationConfigIdentifier %q must start with a letter and hold only ASCII letters, digits and single hyphens, at most 255 characters, not ending with a hyphen", ErrInvalid, t.ReplicationConfigIdentifier)
	}
	rules, err := mapping.Parse(document(t.TableMappings))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: TableMappings: %v", ErrInvalid, err)
	}
	settings, err := runtime.ParseSettings(document(t.ReplicationSettings))
	if err == nil {
		err = settings.CheckType(t.ReplicationType)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var start runtime.Position
	if t.CdcStartPosition != "" {
		if start, err = runtime.ParsePosition(t.CdcStartPosition); err != nil {
			return nil, nil, fmt.Errorf("%w: CdcStartPosition: %v", ErrInvalid, err)
		}
	}
	var startAt time.Time
	if t.CdcStartTime != "" {
		if startAt, err = time.Parse(time.RFC3339Nano, t.CdcStartTime); err != nil {
			return nil, nil, fmt.Errorf("%w: CdcStartTime %q is not a time like 2026-11-23T10:00:00Z", ErrInvalid, t.CdcStartTime)
		}
		if start != nil {
			return nil, nil, fmt.Errorf("%w: give CdcStartTime or CdcStartPosition, not both", ErrInvalid)
		}
	}
	var stopAt time.Time
	if t.CdcStopPosition != "" {
		sp, err := runtime.ParseStopPosition(t.CdcStopPosition)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: CdcStopPosition: %v", ErrInvalid, err)
		}
		if sp.Kind == "commit_time" {
			stopAt = sp.At
		}
	}
	for _, e := range []struct {
		name string
		ep   *Endpoint
	}{{"SourceEndpoint", &t.SourceEndpoint}, {"TargetEndpoint", &t.TargetEndpoint}} {
		if err := e.ep.validate(); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrInvalid, e.name, err)
		}
	}
	src, err := t.source(settings, rules, log)
	if err != nil {
		return nil, nil, err
	}
	tgt, err := t.target(ctx, settings)
	if err != nil {
		_ = src.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	rep := &runtime.Replicator{
		Task: t.ReplicationConfigIdentifier, Type: t.ReplicationType,
		Source: src, Target: tgt, Rules: rules, Settings: settings,
		StartPosition: start, StartTime: startAt, Stats: stats, Log: log,
		Reload:           t.StartReplicationType == "reload-target",
		StopAtCommitTime: stopAt,
		ReloadTables:     t.ReloadTables, ReloadToken: t.ReloadToken,
		ValidateTables: t.ValidateTables,
	}
	if ps := t.TargetEndpoint.PostgreSQLSettings; ps != nil && ps.ExecuteTimeout > 0 {
		rep.TargetTimeout = time.Duration(ps.ExecuteTimeout) * time.Second
	}
	if err := t.validation(rep, settings); err != nil {
		_ = src.Close(context.WithoutCancel(ctx))
		_ = tgt.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	cleanup := func() {
		bg := context.WithoutCancel(ctx)
		_ = src.Close(bg)
		_ = tgt.Close(bg)
	}
	return rep, cleanup, nil
}

func (e *Endpoint) validate() error {
	eng, err := EngineOf(e.EngineName)
	if err != nil {
		return err
	}
	if e.ServerName == "" || e.Username == "" || (e.DatabaseName == "" && eng.NeedsDatabase) {
		return errors.New("ServerName, DatabaseName and Username are required (DatabaseName not for MySQL and MariaDB, whose table mappings name the databases as schemas)")
	}
	if e.Port < 0 || e.Port > 65535 {
		return fmt.Errorf("the value %d of Port is out of range: use 1 to 65535", e.Port)
	}
	switch e.SslMode {
	case "", "none", "require", "verify-ca", "verify-full":
	default:
		return fmt.Errorf("SslMode %q is not valid: use none, require, verify-ca or verify-full", e.SslMode)
	}
	return nil
}

// ConnString renders the endpoint as a connection URL. It holds the password:
// never log it.
func (e *Endpoint) ConnString() string {
	port := e.Port
	if port == 0 {
		port = 5432
	}
	ssl := e.SslMode
	if ssl == "" || ssl == "none" {
		ssl = "disable"
	}
	u := url.URL{
		Scheme: "postgres",
		User:   url.UserPassword(e.Username, e.Password),
		Host:   e.ServerName + ":" + strconv.Itoa(port),
		Path:   "/" + e.DatabaseName,
		// A server that never answers (a network dropping everything)
		// fails the connection attempt instead of holding it forever.
		RawQuery: url.Values{"sslmode": {ssl}, "connect_timeout": {"10"}}.Encode(),
	}
	return u.String()
}

// sanitize makes an identifier usable in slot and publication names.
func sanitize(id string) string {
	s := strings.ToLower(strings.ReplaceAll(id, "-", "_"))
	if len(s) > 50 {
		s = s[:50]
	}
	return s
}

// validation gives rep its validator when the settings or a validate-only
// request ask for one.
func (t *Task) validation(rep *runtime.Replicator, settings runtime.Settings) error {
	v := settings.ValidationSettings
	if !v.EnableValidation && !v.ValidationOnly && len(t.ValidateTables) == 0 {
		return nil
	}
	src, ok1 := rep.Source.(runtime.SnapshotReader)
	tgt, ok2 := rep.Target.(runtime.SnapshotReader)
	if !ok1 || !ok2 {
		return fmt.Errorf("%w: data validation is not available between %s and %s", ErrInvalid, t.SourceEndpoint.EngineName, t.TargetEndpoint.EngineName)
	}
	rec, _ := rep.Target.(runtime.FailureRecorder)
	if rep.Stats == nil {
		rep.Stats = runtime.NewStats()
	}
	streaming := t.ReplicationType != runtime.FullLoad && !v.ValidationOnly
	if streaming {
		rep.Touched = runtime.NewTouched()
	}
	rep.Validation = &validate.Validator{
		Task: t.ReplicationConfigIdentifier, Source: src, Target: tgt, Recorder: rec,
		Settings: v, ZeroDateAsNull: settings.SluiceSettings.ZeroDateAsNull,
		Stats: rep.Stats, Streaming: streaming, Continuous: streaming && v.EnableValidation,
		Touched: rep.Touched, Log: rep.Log,
	}
	if settings.SluiceSettings.RepairValidationFailures {
		rows, ok := rep.Source.(runtime.RowFetcher)
		if !ok || !streaming {
			return fmt.Errorf("%w: SluiceSettings.RepairValidationFailures needs a change stream (ReplicationType cdc or full-load-and-cdc, without ValidationOnly), whose applier makes the repairs", ErrInvalid)
		}
		val := rep.Validation.(*validate.Validator)
		val.Rows, val.Repair = rows, rep.RepairRows
	}
	return nil
}
