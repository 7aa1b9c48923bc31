package runtime

import (
	"encoding/json"
	"fmt"
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
	// ValidationSettings is read so that a document asking for data
	// validation is refused, not run without it (see validate).
	ValidationSettings ValidationSettings
	SluiceSettings     SluiceSettings
}

// ValidationSettings is DMS's section of that name. Sluice does not
// validate data yet: its other members only tune a validation, so with
// both of these false (DMS's defaults) the section means what DMS does.
type ValidationSettings struct {
	EnableValidation bool
	ValidationOnly   bool
}

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
	}
	return s, s.validate()
}

func (s *Settings) validate() error {
	if v := s.ValidationSettings; v.EnableValidation || v.ValidationOnly {
		return fmt.Errorf("ValidationSettings.EnableValidation and ValidationOnly must be false: Sluice does not validate data yet, and a replication that asked for it must not run as if it had. Remove them or set them to false")
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
