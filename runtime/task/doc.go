// Package task turns one replication described in DMS terms (endpoints,
// ReplicationType, TableMappings, ReplicationSettings) into a running
// replicator: it validates the description, builds the engine-specific
// source and target, and runs runtime.Replicator. The standalone entrypoint
// and the control plane's launcher both start replications through it.
package task
