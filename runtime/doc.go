// Package runtime is the replicator: the data plane of Sluice.
//
// Rows and changes enter from a Source (a snapshot for the full load, then a
// stream of committed transactions), are mapped to target names by the table
// mappings, and leave through a Target, which commits each batch of data together
// with the position it reached. The target's stored position is the truth the
// replicator resumes from, so a replicator killed at any point loses nothing and
// applies nothing twice. Engine packages (pgsource, pgtarget, ...) implement the
// Source and Target interfaces declared here, and the small optional ones
// (Acker, Checker, and for validation SnapshotReader, FailureRecorder,
// RowFetcher) that only some engines or callers need; this package never
// imports them. Validation itself (runtime/validate) runs beside the change
// stream through the Validation interface, learning from Touched which rows
// the stream wrote and from Stats.Reached how far it has applied.
package runtime
