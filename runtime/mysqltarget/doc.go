// Package mysqltarget writes a replication into MySQL or MariaDB: tables
// created from the source's own MySQL types (or mapped from PostgreSQL's),
// the full load as multi-row INSERTs, and the change stream as idempotent
// statements (INSERT … ON DUPLICATE KEY UPDATE, UPDATE and DELETE by key)
// committed together with the position in awsdms_txn_state.
package mysqltarget
