// Package runtime is the replicator: the data plane of Sluice.
//
// Rows and changes enter from a Source (a snapshot for the full load, then a
// stream of committed transactions), are mapped to target names by the table
// mappings, and leave through a Target, which commits each batch of data together
// with the position it reached. The target's stored position is the truth the
// replicator resumes from, so a replicator killed at any point loses nothing and
// applies nothing twice. Engine packages (pgsource, pgtarget, ...) implement the
// Source and Target interfaces declared here, and the small optional ones
// (Acker, Checker) that only some engines need; this package never imports them.
package runtime
