// Package copytext writes and reads the row text of runtime.CopyText:
// PostgreSQL's COPY text format, tab-separated fields with backslash
// escapes and \N for NULL, which every source writes for the full load and
// every target reads. MySQL's LOAD DATA reads nearly the same text, so the
// MySQL target rewrites rows into it with the same encoder (LoadData).
// It is apart from pgtext because its users are the MySQL source and target
// as much as PostgreSQL's, and because it is built on runtime.Value, which
// pgtext must not depend on.
package copytext
