// Package pgtarget writes a replication into PostgreSQL: it creates the
// tables (types, sequences, partitions, keys, constraints, secondary
// indexes), loads rows with COPY, and applies the change stream in
// transactions that also store the replication's position in the control
// table awsdms_txn_state, so data and position commit or vanish together.
package pgtarget
