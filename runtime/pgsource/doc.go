// Package pgsource reads a PostgreSQL database for the replicator: its catalog
// (tables, keys, indexes, sequences, user types), a snapshot exported by a
// logical replication slot for the full load, and the slot's pgoutput stream
// for change data capture. Changes leave as runtime.Change values with column
// values in their text form; the slot is confirmed only up to what the target
// has durably applied.
package pgsource
