// Package validate proves that a target holds what its source holds
// (DMS's data validation, ValidationSettings).
//
// A table is split into key ranges of PartitionSize rows by walking the
// source's key. Each range is summed inside both databases — its row count
// and the sum of the first 60 bits of each row's MD5 — so ranges that are
// equal cost two small queries and no row transfer. A range that differs is
// split at its median key, again and again, until it holds few enough rows
// to fetch and compare one by one; ROW_LEVEL mode compares every range row
// by row. Ranges are compared ThreadCount at a time.
//
// A row is hashed from its canonical text: for each column an SQL
// expression that both engines evaluate to the same text for the same value
// (a MySQL decimal(10,2) and its PostgreSQL numeric(10,2) both print
// 12.30; a datetime and its timestamp both print through one format with
// six fraction digits). Where no such expression exists (floating point,
// JSON, MySQL time ↔ interval), the column is fetched and normalised in Go,
// and its ranges are summed in Go too, on both sides alike.
//
// The source and the target are read at consistent snapshots whose
// positions are known: the source's (an exported snapshot of a temporary
// slot; MariaDB's binlog_snapshot_position) and the position stored with
// the target's data. A row that differs is a failure only if no transaction
// between the two positions wrote it (runtime.Touched); otherwise it is
// compared again later, after ValidationQueryCdcDelaySeconds, so live
// writes never raise false alarms.
package validate
