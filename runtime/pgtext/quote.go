package pgtext

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// Ident quotes a possibly qualified PostgreSQL identifier, one part per
// argument. It is pgx's quoting, which also drops NUL bytes: PostgreSQL
// names cannot hold one, and a NUL would end the statement early.
func Ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

// Literal quotes s as a PostgreSQL string literal. Doubling the quote is
// all the escaping a literal needs with standard_conforming_strings on,
// which SessionParams pins: with it off, a backslash would escape the
// quote after it.
func Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
