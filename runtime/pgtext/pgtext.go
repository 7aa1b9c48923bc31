// Package pgtext pins the session settings that decide how PostgreSQL writes
// values as text, and quotes the names and strings Sluice writes into
// PostgreSQL's SQL. Values travel between databases in text form (pgoutput,
// COPY text, statement parameters); a source whose database defaults to
// DateStyle 'SQL, DMY' or extra_float_digits 0 would otherwise write dates
// and floats that the target reads back differently. Every session Sluice
// opens, on a source or a target, uses these. The quoting is here so that
// the PostgreSQL source and target, and the MySQL source (which writes the
// PostgreSQL DDL of its indexes), share one without importing each other.
package pgtext

// SessionParams are the startup parameters of every PostgreSQL session.
var SessionParams = map[string]string{
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"TimeZone":           "UTC",
	"application_name":   "sluice",
	// Literal's quoting relies on it; a database or role could turn it off.
	"standard_conforming_strings": "on",
}

// Apply adds SessionParams to a connection's runtime parameters.
func Apply(params map[string]string) {
	for k, v := range SessionParams {
		params[k] = v
	}
}
