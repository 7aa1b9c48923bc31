// Package mapping evaluates an AWS DMS table-mappings document (the
// TableMappings JSON of a replication task) against source schema, table and
// column names, and answers which source tables are selected and what each
// table and column is called on the target. It exists so that full load and
// change capture share one validated interpretation of DMS selection and
// transformation rules instead of each re-implementing DMS semantics.
package mapping
