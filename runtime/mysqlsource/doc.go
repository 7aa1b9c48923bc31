// Package mysqlsource reads a MySQL or MariaDB database: its catalog from
// information_schema, a full load in consistent snapshots read in parallel
// by key ranges, and its changes from the row-based binary log with
// go-mysql. Values are rendered in the text form of the PostgreSQL types
// the type map in types.go chooses.
package mysqlsource
