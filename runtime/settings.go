package runtime

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Settings is the subset of DMS ReplicationSettings the replicator honours,
// under the names DMS documents, plus Sluice's own section.
type Settings struct {
	TargetMetadata         TargetMetadata
	FullLoadSettings       FullLoadSettings
	ControlTablesSettings  ControlTablesSettings
	ChangeProcessingTuning ChangeProcessingTuning
	// ChangeProcessingDdlHandlingPolicy says which source DDL is applied
	// to the target; each member defaults to true, as in DMS.
	ChangeProcessingDdlHandlingPolicy DdlHandlingPolicy
	// ValidationSettings says whether and how the target is compared
	// with the source (runtime/validate).
	ValidationSettings ValidationSettings
	// ErrorBehavior says what happens to rows and tables the target
	// refuses, and to passing faults (errorbehavior.go).
	ErrorBehavior  ErrorBehavior
	SluiceSettings SluiceSettings
}

// ValidationSettings is DMS's section of that name. Every member DMS
// documents that Sluice honours is here; a document naming any other is
// refused (see checkMembers), never run as if it had not asked.
type ValidationSettings struct {
	// EnableValidation compares every table after its full load, then
	// every row the change stream writes.
	EnableValidation bool
	// ValidationMode is GROUP_LEVEL (checksums of key ranges, split
	// until the differing rows are found; the default) or ROW_LEVEL
	// (every row of every range compared one by one).
	ValidationMode string
	// ThreadCount is how many key ranges are compared at once.
	ThreadCount int
	// PartitionSize is how many rows each key range holds.
	PartitionSize int
	// FailureMaxCount is how many failed rows, in all tables, end the
	// validation of the replication; TableFailureMaxCount of one table.
	FailureMaxCount      int
	TableFailureMaxCount int
	// ValidationOnly compares the tables and writes nothing to them.
	ValidationOnly bool
	// ValidationQueryCdcDelaySeconds is how long a row the change
	// stream wrote waits before it is compared.
	ValidationQueryCdcDelaySeconds int
	// RecordFailureDelayInMinutes and RecordFailureDelayLimitInMinutes
	// delay the report of a failed row: it is compared again until the
	// delay has passed, and reported only if it still differs.
	RecordFailureDelayInMinutes      int
	RecordFailureDelayLimitInMinutes int
	// RecordSuspendDelayInMinutes is how long a row may keep changing
	// under the comparison before it is suspended instead of compared.
	RecordSuspendDelayInMinutes int
	// SkipLobColumns leaves text, binary and JSON columns out.
	SkipLobColumns bool
	// HandleCollationDiff orders text keys by their bytes on both sides.
	// Sluice always does where the two databases' orders may differ, so
	// both values are honoured.
	HandleCollationDiff bool
}

// Validation modes (ValidationSettings.ValidationMode).
const (
	ValidateGroupLevel = "GROUP_LEVEL"
	ValidateRowLevel   = "ROW_LEVEL"
)

// DdlHandlingPolicy is DMS's section of that name.
type DdlHandlingPolicy struct {
	HandleSourceTableAltered   *bool
	HandleSourceTableDropped   *bool
	HandleSourceTableTruncated *bool
}

// handles says whether the policy applies changes of kind k (a truncate
// when k is 0).
func (p DdlHandlingPolicy) handles(k DDLKind) bool {
	flag := p.HandleSourceTableAltered
	switch k {
	case DDLDropTable:
		flag = p.HandleSourceTableDropped
	case 0:
		flag = p.HandleSourceTableTruncated
	}
	return flag == nil || *flag
}

// TargetMetadata is DMS's section of the same name.
type TargetMetadata struct {
	// TargetSchema, when set, is the target schema of every table before the
	// schema transformations.
	TargetSchema string
	// BatchApplyEnabled merges each batch's net changes per table and applies
	// them in bulk instead of statement by statement in commit order.
	BatchApplyEnabled bool
}

// Target table preparation modes (FullLoadSettings.TargetTablePrepMode).
const (
	PrepDropAndCreate      = "DROP_AND_CREATE"
	PrepTruncateBeforeLoad = "TRUNCATE_BEFORE_LOAD"
	PrepDoNothing          = "DO_NOTHING"
)

// FullLoadSettings is DMS's section of the same name.
type FullLoadSettings struct {
	TargetTablePrepMode string
	// MaxFullLoadSubTasks is how many chunks load at once.
	MaxFullLoadSubTasks int
}

// ControlTablesSettings is DMS's section of the same name.
type ControlTablesSettings struct {
	// ControlSchema holds awsdms_txn_state and the other control tables.
	ControlSchema string
}

// ChangeProcessingTuning is DMS's section of the same name.
type ChangeProcessingTuning struct {
	// BatchApplyTimeoutMax caps, in seconds, how long changes wait to be
	// grouped into one target transaction.
	BatchApplyTimeoutMax int
	// BatchApplyMemoryLimit caps, in MB, the changes grouped into one target
	// transaction in batch apply mode.
	BatchApplyMemoryLimit int
	// MemoryLimitTotal caps, in MB, the changes buffered between the source
	// reader and the applier; reading pauses when it is reached.
	MemoryLimitTotal int
}

// SluiceSettings are Sluice's own settings, where DMS has none.
type SluiceSettings struct {
	// CreateSecondaryIndexes builds the source's secondary indexes after the
	// full load (DMS never does). Default true.
	CreateSecondaryIndexes *bool
	// SetReplicaIdentityFull lets Sluice run ALTER TABLE ... REPLICA IDENTITY
	// FULL on source tables that have neither a primary key nor a replica
	// identity, so their updates and deletes can be replicated. Default false:
	// such tables replicate inserts only, with a warning in their statistics.
	SetReplicaIdentityFull bool
	// ChunkPages is the table size, in 8 KiB pages, above which the full load
	// splits a table into chunks copied in parallel. Default 4096 (32 MiB).
	ChunkPages int64
	// ZeroDateAsNull replicates MySQL's zero dates (0000-00-00) as NULL.
	// Default false: a zero date stops the replication with an error that
	// names the column, never a silently different date.
	ZeroDateAsNull bool
	// RepairValidationFailures rewrites the rows validation finds
	// different on the target from the source, through the applier, and
	// records them as repaired. Default false: failures are reported only.
	RepairValidationFailures bool
	// WalRetentionWarningMB is how much WAL, in MB, the replication's
	// slot may hold on a PostgreSQL source before a warning says so in
	// FailureMessages; a source's max_slot_wal_keep_size lowers it to half
	// that. Default 10240 (10 GiB).
	WalRetentionWarningMB int64
}

// DefaultSettings returns the settings used where a document is silent.
func DefaultSettings() Settings {
	yes := true
	return Settings{
		FullLoadSettings:       FullLoadSettings{TargetTablePrepMode: PrepDropAndCreate, MaxFullLoadSubTasks: 8},
		ControlTablesSettings:  ControlTablesSettings{ControlSchema: "public"},
		ChangeProcessingTuning: ChangeProcessingTuning{BatchApplyTimeoutMax: 1, BatchApplyMemoryLimit: 64, MemoryLimitTotal: 256},
		SluiceSettings:         SluiceSettings{CreateSecondaryIndexes: &yes, ChunkPages: 4096},
	}
}

// ParseSettings reads a ReplicationSettings document over the defaults and
// checks it. An empty document gives the defaults.
func ParseSettings(doc []byte) (Settings, error) {
	s := DefaultSettings()
	if len(doc) > 0 {
		if err := json.Unmarshal(doc, &s); err != nil {
			return s, fmt.Errorf("ReplicationSettings is not valid JSON of the DMS task-settings shape: %w", err)
		}
		if err := checkMembers(doc); err != nil {
			return s, err
		}
	}
	return s, s.validate()
}

func (s *Settings) validate() error {
	if err := s.ValidationSettings.validate(); err != nil {
		return err
	}
	if err := s.ErrorBehavior.validate(); err != nil {
		return err
	}
	if s.TargetMetadata.BatchApplyEnabled {
		if err := s.ErrorBehavior.checkBatch(); err != nil {
			return err
		}
	}
	switch s.FullLoadSettings.TargetTablePrepMode {
	case PrepDropAndCreate, PrepTruncateBeforeLoad, PrepDoNothing:
	case "":
		s.FullLoadSettings.TargetTablePrepMode = PrepDropAndCreate
	default:
		return fmt.Errorf("FullLoadSettings.TargetTablePrepMode %q is not valid: use DROP_AND_CREATE, TRUNCATE_BEFORE_LOAD or DO_NOTHING", s.FullLoadSettings.TargetTablePrepMode)
	}
	if n := s.FullLoadSettings.MaxFullLoadSubTasks; n < 0 || n > 49 {
		return fmt.Errorf("FullLoadSettings.MaxFullLoadSubTasks %d is out of range: use 1 to 49", n)
	} else if n == 0 {
		s.FullLoadSettings.MaxFullLoadSubTasks = 8
	}
	if s.ControlTablesSettings.ControlSchema == "" {
		s.ControlTablesSettings.ControlSchema = "public"
	}
	c := &s.ChangeProcessingTuning
	if c.BatchApplyTimeoutMax < 0 || c.BatchApplyMemoryLimit < 0 || c.MemoryLimitTotal < 0 {
		return fmt.Errorf("ChangeProcessingTuning values must not be negative")
	}
	if c.BatchApplyTimeoutMax == 0 {
		c.BatchApplyTimeoutMax = 1
	}
	if c.BatchApplyMemoryLimit == 0 {
		c.BatchApplyMemoryLimit = 64
	}
	if c.MemoryLimitTotal == 0 {
		c.MemoryLimitTotal = 256
	}
	if s.SluiceSettings.CreateSecondaryIndexes == nil {
		yes := true
		s.SluiceSettings.CreateSecondaryIndexes = &yes
	}
	if s.SluiceSettings.ChunkPages <= 0 {
		s.SluiceSettings.ChunkPages = 4096
	}
	if s.SluiceSettings.WalRetentionWarningMB < 0 {
		return fmt.Errorf("SluiceSettings.WalRetentionWarningMB %d must not be negative", s.SluiceSettings.WalRetentionWarningMB)
	}
	if s.SluiceSettings.WalRetentionWarningMB == 0 {
		s.SluiceSettings.WalRetentionWarningMB = 10240
	}
	return nil
}

// transactionalWindow caps how long transactional apply groups source
// transactions into one target transaction: long enough to amortize commits
// when behind, short enough that the group's age does not become lag.
const transactionalWindow = 50 * time.Millisecond

// batchWindow is how long the applier keeps a target transaction open to
// group further source transactions into it. Batch apply trades latency for
// throughput up to BatchApplyTimeoutMax, as in DMS.
func (s Settings) batchWindow() time.Duration {
	if !s.TargetMetadata.BatchApplyEnabled {
		return transactionalWindow
	}
	return time.Duration(s.ChangeProcessingTuning.BatchApplyTimeoutMax) * time.Second
}

// checkMembers refuses a section or member Sluice does not honour, by
// name: a document that asks for what Sluice does not do (DMS's Logging,
// FullLoadSettings.CommitRate, ValidationSettings.ValidationPartialLobSize,
// a misspelling) must not run as if it had not asked. The sections and
// members honoured are the fields of Settings, under DMS's exact names.
func checkMembers(doc []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil // the typed decode has already said what is wrong
	}
	var refused []string
	st := reflect.TypeOf(Settings{})
	for name, raw := range top {
		f, ok := st.FieldByName(name)
		if !ok || !f.IsExported() {
			refused = append(refused, name)
			continue
		}
		var members map[string]json.RawMessage
		if json.Unmarshal(raw, &members) != nil {
			continue
		}
		for m := range members {
			if mf, ok := f.Type.FieldByName(m); !ok || !mf.IsExported() {
				refused = append(refused, name+"."+m)
			}
		}
	}
	if len(refused) == 0 {
		return nil
	}
	sort.Strings(refused)
	return fmt.Errorf("ReplicationSettings %s: not honoured by Sluice, so refused rather than ignored; remove what is listed (Sluice honours %s)", strings.Join(refused, ", "), honoured())
}

// honoured lists the sections and members Sluice honours.
func honoured() string {
	var out []string
	st := reflect.TypeOf(Settings{})
	for i := range st.NumField() {
		f := st.Field(i)
		var members []string
		for j := range f.Type.NumField() {
			members = append(members, f.Type.Field(j).Name)
		}
		out = append(out, f.Name+" ("+strings.Join(members, ", ")+")")
	}
	return strings.Join(out, "; ")
}

// validate checks the section and fills DMS's defaults.
func (v *ValidationSettings) validate() error {
	switch v.ValidationMode {
	case "":
		v.ValidationMode = ValidateGroupLevel
	case ValidateGroupLevel, ValidateRowLevel:
	default:
		return fmt.Errorf("ValidationSettings.ValidationMode %q is not valid: use GROUP_LEVEL or ROW_LEVEL", v.ValidationMode)
	}
	for _, n := range []struct {
		name     string
		v        *int
		def, max int
	}{
		{"ThreadCount", &v.ThreadCount, 5, 64},
		{"PartitionSize", &v.PartitionSize, 10000, 1000000},
		{"FailureMaxCount", &v.FailureMaxCount, 10000, 1 << 30},
		{"TableFailureMaxCount", &v.TableFailureMaxCount, 1000, 1 << 30},
		{"ValidationQueryCdcDelaySeconds", &v.ValidationQueryCdcDelaySeconds, 0, 86400},
		{"RecordFailureDelayInMinutes", &v.RecordFailureDelayInMinutes, 0, 1440},
		{"RecordFailureDelayLimitInMinutes", &v.RecordFailureDelayLimitInMinutes, 0, 1440},
		{"RecordSuspendDelayInMinutes", &v.RecordSuspendDelayInMinutes, 30, 1440},
	} {
		if *n.v < 0 || *n.v > n.max {
			return fmt.Errorf("ValidationSettings.%s %d is out of range: use 0 to %d", n.name, *n.v, n.max)
		}
		if *n.v == 0 && n.def > 0 {
			*n.v = n.def
		}
	}
	if v.PartitionSize < 2 {
		return fmt.Errorf("ValidationSettings.PartitionSize %d is too small: use at least 2", v.PartitionSize)
	}
	return nil
}

// FailureDelay is how long a row that differs is compared again before it
// is reported: the larger of RecordFailureDelayInMinutes and
// RecordFailureDelayLimitInMinutes, at least the CDC delay.
func (v ValidationSettings) FailureDelay() time.Duration {
	d := time.Duration(max(v.RecordFailureDelayInMinutes, v.RecordFailureDelayLimitInMinutes)) * time.Minute
	return max(d, v.CDCDelay())
}

// CDCDelay is ValidationQueryCdcDelaySeconds.
func (v ValidationSettings) CDCDelay() time.Duration {
	return time.Duration(v.ValidationQueryCdcDelaySeconds) * time.Second
}

// CheckType refuses settings that a replication of type typ cannot honour.
func (s Settings) CheckType(typ string) error {
	if s.SluiceSettings.RepairValidationFailures && (typ == FullLoad || s.ValidationSettings.ValidationOnly) {
		return fmt.Errorf("SluiceSettings.RepairValidationFailures rewrites rows through the change stream's applier, which a %s replication does not run: use ReplicationType cdc or full-load-and-cdc, without ValidationOnly", typ)
	}
	if !s.ErrorBehavior.failOnNoTables() && typ != FullLoad {
		return fmt.Errorf("ErrorBehavior.FailOnNoTablesCaptured false lets a replication start with no table selected, which Sluice supports for a full-load replication only (it finishes having loaded nothing); a %s replication would capture nothing: fix the table mappings, or leave the member out", typ)
	}
	if s.ValidationSettings.ValidationOnly && typ != FullLoad {
		return fmt.Errorf("ValidationSettings.ValidationOnly compares the tables as they are and writes nothing, which a %s replication cannot do: use ReplicationType full-load with it", typ)
	}
	return nil
}
