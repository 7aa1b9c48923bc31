package store

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Time is a timestamp that travels as AWS JSON protocols write them: epoch
// seconds as a JSON number, with the fraction.
type Time struct{ time.Time }

// At returns t as a *Time, the form the optional members use.
func At(t time.Time) *Time { return &Time{t.UTC()} }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("a timestamp must be epoch seconds as a JSON number: %w", err)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 253402300799 {
		return fmt.Errorf("the timestamp %v is out of range", f)
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

// Tag is a resource tag.
type Tag struct {
	Key         string
	Value       string `json:",omitempty"`
	ResourceArn string `json:",omitempty"`
}

// PostgreSQLSettings are the DMS PostgreSQL endpoint settings Sluice keeps.
type PostgreSQLSettings struct {
	SlotName                    string `json:",omitempty"`
	PluginName                  string `json:",omitempty"`
	SecretsManagerSecretId      string `json:",omitempty"` //nolint:revive // the AWS member name
	SecretsManagerAccessRoleArn string `json:",omitempty"`
	DatabaseName                string `json:",omitempty"`
	Port                        int    `json:",omitempty"`
	ServerName                  string `json:",omitempty"`
	Username                    string `json:",omitempty"`
	HeartbeatEnable             bool   `json:",omitempty"`
	HeartbeatFrequency          int    `json:",omitempty"` // minutes
	ExecuteTimeout              int    `json:",omitempty"` // seconds; target endpoints
	// HeartbeatSchema is kept only to be refused by name: Sluice's
	// heartbeat creates nothing on the source, so there is no schema.
	HeartbeatSchema string `json:",omitempty"`
}

// MySQLSettings are the DMS MySQL endpoint settings Sluice keeps.
type MySQLSettings struct {
	SecretsManagerSecretId      string `json:",omitempty"` //nolint:revive // the AWS member name
	SecretsManagerAccessRoleArn string `json:",omitempty"`
	DatabaseName                string `json:",omitempty"`
	Port                        int    `json:",omitempty"`
	ServerName                  string `json:",omitempty"`
	Username                    string `json:",omitempty"`
	ServerTimezone              string `json:",omitempty"`
}

// Endpoint is a DMS endpoint as the API returns it: never with a password.
type Endpoint struct {
	EndpointIdentifier        string
	EndpointType              string // SOURCE or TARGET
	EngineName                string
	EngineDisplayName         string `json:",omitempty"`
	Username                  string `json:",omitempty"`
	ServerName                string `json:",omitempty"`
	Port                      int    `json:",omitempty"`
	DatabaseName              string `json:",omitempty"`
	ExtraConnectionAttributes string `json:",omitempty"`
	Status                    string
	KmsKeyId                  string `json:",omitempty"` //nolint:revive // the AWS member name
	EndpointArn               string
	CertificateArn            string              `json:",omitempty"`
	SslMode                   string              `json:",omitempty"`
	PostgreSQLSettings        *PostgreSQLSettings `json:",omitempty"`
	MySQLSettings             *MySQLSettings      `json:",omitempty"`
}

// EndpointRecord is what the store keeps of an endpoint: its API shape and
// the password sealed with the master key (empty when a secret holds it).
type EndpointRecord struct {
	Endpoint
	SealedPassword string `json:",omitempty"`
	Created        Time
}

// ComputeConfig is a serverless replication's capacity bounds.
type ComputeConfig struct {
	AvailabilityZone           string   `json:",omitempty"`
	DnsNameServers             string   `json:",omitempty"`
	KmsKeyId                   string   `json:",omitempty"` //nolint:revive // the AWS member name
	MaxCapacityUnits           int      `json:",omitempty"`
	MinCapacityUnits           int      `json:",omitempty"`
	MultiAZ                    *bool    `json:",omitempty"`
	PreferredMaintenanceWindow string   `json:",omitempty"`
	ReplicationSubnetGroupId   string   `json:",omitempty"` //nolint:revive // the AWS member name
	VpcSecurityGroupIds        []string `json:",omitempty"` //nolint:revive // the AWS member name
}

// Config is a DMS Serverless replication config.
type Config struct {
	ReplicationConfigIdentifier string
	ReplicationConfigArn        string
	SourceEndpointArn           string
	TargetEndpointArn           string
	ReplicationType             string
	ComputeConfig               *ComputeConfig `json:",omitempty"`
	ReplicationSettings         string         `json:",omitempty"`
	SupplementalSettings        string         `json:",omitempty"`
	TableMappings               string
	ReplicationConfigCreateTime *Time `json:",omitempty"`
	ReplicationConfigUpdateTime *Time `json:",omitempty"`
}

// UnitRange is the config's Min/MaxCapacityUnits, zero where unset.
func (c *Config) UnitRange() (minU, maxU int) {
	if cc := c.ComputeConfig; cc != nil {
		return cc.MinCapacityUnits, cc.MaxCapacityUnits
	}
	return 0, 0
}

// ProvisionData is the capacity a replication holds.
type ProvisionData struct {
	ProvisionState                   string `json:",omitempty"`
	ProvisionedCapacityUnits         int    `json:",omitempty"`
	DateProvisioned                  *Time  `json:",omitempty"`
	IsNewProvisioningAvailable       bool
	DateNewProvisioningDataAvailable *Time  `json:",omitempty"`
	ReasonForNewProvisioningData     string `json:",omitempty"`
}

// ReplicationStats are a replication's overall statistics.
type ReplicationStats struct {
	FullLoadProgressPercent int
	ElapsedTimeMillis       int64
	TablesLoaded            int
	TablesLoading           int
	TablesQueued            int
	TablesErrored           int
	// The validation of every table, summed (Sluice's members: DMS
	// shows them per table only). SDKs that know only DMS's members
	// leave them out; the REST alias and sluice watch show them.
	ValidationFailedRecords  int64 `json:",omitempty"`
	ValidationPendingRecords int64 `json:",omitempty"`
	TablesMismatched         int   `json:",omitempty"`
	// SourceRetainedWalBytes is how much WAL the replication's slot holds
	// on its PostgreSQL source (Sluice's member), measured while it runs
	// and while it is stopped: a slot nobody reads holds WAL until the
	// source's disk is full.
	SourceRetainedWalBytes int64 `json:",omitempty"`
	FreshStartDate         *Time `json:",omitempty"`
	StartDate              *Time `json:",omitempty"`
	StopDate               *Time `json:",omitempty"`
	FullLoadStartDate      *Time `json:",omitempty"`
	FullLoadFinishDate     *Time `json:",omitempty"`
}

// Replication is the running state of one config, as DescribeReplications
// returns it.
type Replication struct {
	ReplicationConfigIdentifier string
	ReplicationConfigArn        string
	SourceEndpointArn           string
	TargetEndpointArn           string
	ReplicationType             string
	Status                      Status
	ProvisionData               *ProvisionData    `json:",omitempty"`
	StopReason                  string            `json:",omitempty"`
	FailureMessages             []string          `json:",omitempty"`
	ReplicationStats            *ReplicationStats `json:",omitempty"`
	StartReplicationType        StartType         `json:",omitempty"`
	CdcStartTime                *Time             `json:",omitempty"`
	CdcStartPosition            string            `json:",omitempty"`
	CdcStopPosition             string            `json:",omitempty"`
	RecoveryCheckpoint          string            `json:",omitempty"`
	ReplicationCreateTime       *Time             `json:",omitempty"`
	ReplicationUpdateTime       *Time             `json:",omitempty"`
	ReplicationLastStopTime     *Time             `json:",omitempty"`
	ReplicationDeprovisionTime  *Time             `json:",omitempty"`
}

// ReplicationRecord is what the store keeps of a replication: its API shape
// and the members the API does not show.
type ReplicationRecord struct {
	Replication
	// Runs counts the starts: start-replication is valid only for the first.
	Runs int
	// Pending is what the next start must do (set by StartReplication, read
	// by whoever launches the replicator): a full reload of the target.
	Reload bool `json:",omitempty"`
	// CDCLatencyTarget is how far the target is behind the source, in
	// seconds (DMS's CloudWatch metric of that name), while running.
	CDCLatencyTarget float64 `json:",omitempty"`
	// ReloadTables (source names, schema.table) is the last
	// ReloadReplicationTables request, which ReloadToken names: the
	// replicator carries it out once and remembers it on the target.
	ReloadTables []string `json:",omitempty"`
	ReloadToken  string   `json:",omitempty"`
	// ValidateTables (source names) is the last validate-only
	// ReloadReplicationTables request: the replicator validates them
	// first, without touching them.
	ValidateTables []string `json:",omitempty"`
}

// TableStatistics is one table's statistics, as
// DescribeReplicationTableStatistics returns them.
type TableStatistics struct {
	SchemaName        string
	TableName         string
	Inserts           int64
	Deletes           int64
	Updates           int64
	Ddls              int64
	AppliedInserts    int64
	AppliedDeletes    int64
	AppliedUpdates    int64
	AppliedDdls       int64
	FullLoadRows      int64
	FullLoadStartTime *Time `json:",omitempty"`
	FullLoadEndTime   *Time `json:",omitempty"`
	LastUpdateTime    *Time `json:",omitempty"`
	TableState        string
	// ValidationState is DMS's ("Not enabled", "Validated", "Mismatched
	// records", ...); the counts are the rows that wait to be compared
	// again, that differ, and that kept changing too long to be compared.
	ValidationState            string `json:",omitempty"`
	ValidationPendingRecords   int64
	ValidationFailedRecords    int64
	ValidationSuspendedRecords int64
	// EstimatedRows is the source's row estimate, for progress bars. It is
	// not a DMS member: DescribeReplicationTableStatistics leaves it out,
	// the REST alias GET /replications/{id} shows it.
	EstimatedRows int64 `json:",omitempty"`
	// ValidationStateDetails says why a validation is in its state, and
	// carries Sluice's warnings for the table (a keyless table whose
	// updates cannot be captured, apply misses).
	ValidationStateDetails string `json:",omitempty"`
	// TableStateDetails says why a table is in "Table error" (the
	// ErrorBehavior policy that suspended it and the refused change);
	// ApplyConflicts and ApplyErrors count the changes that found the
	// target's row not as the source had it, and those the target refused
	// and that were left out. Sluice's members, not DMS's: the SDKs drop
	// them, the REST alias shows them, and ValidationStateDetails carries
	// the reason too.
	TableStateDetails string `json:",omitempty"`
	ApplyConflicts    int64  `json:",omitempty"`
	ApplyErrors       int64  `json:",omitempty"`
}

// Status is a replication's status, spelled as AWS returns it (the
// lifecycle contract in DESIGN.md). Which event moves which status is
// capacity/lifecycle's; the store only keeps it.
type Status string

// Replication statuses.
const (
	StatusCreated             Status = "created"
	StatusInitializing        Status = "initializing"
	StatusPreparingMetadata   Status = "preparing_metadata_resources"
	StatusTestingConnection   Status = "testing_connection"
	StatusFetchingMetadata    Status = "fetching_metadata"
	StatusCalculatingCap      Status = "calculating_capacity"
	StatusProvisioningCap     Status = "provisioning_capacity"
	StatusReplicationStarting Status = "replication_starting"
	StatusRunning             Status = "running"
	StatusStopping            Status = "stopping"
	StatusStopped             Status = "stopped"
	StatusFailed              Status = "failed"
)

// StartType is StartReplication's StartReplicationType.
type StartType string

// Start types, as DMS names them.
const (
	StartFirst  StartType = "start-replication" // the first run only
	StartResume StartType = "resume-processing" // from the checkpoint; not for full-load
	StartReload StartType = "reload-target"     // the whole target again
)

// Provision states.
const (
	Provisioning   = "provisioning"
	Provisioned    = "provisioned"
	Deprovisioning = "deprovisioning"
	Deprovisioned  = "deprovisioned"
)

// SecretID returns the Secrets Manager secret that holds the endpoint's
// connection, or "".
func (e *Endpoint) SecretID() string {
	if e.PostgreSQLSettings != nil && e.PostgreSQLSettings.SecretsManagerSecretId != "" {
		return e.PostgreSQLSettings.SecretsManagerSecretId
	}
	if e.MySQLSettings != nil {
		return e.MySQLSettings.SecretsManagerSecretId
	}
	return ""
}
