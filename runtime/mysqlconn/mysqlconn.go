// Package mysqlconn opens sessions on MySQL and MariaDB the one way Sluice
// reads and writes them: text as utf8mb4 and times as UTC, so values
// travel between servers unchanged. It also quotes the names and strings
// written into MySQL statements, one way for the source and the target.
package mysqlconn

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// Server is where a MySQL or MariaDB server is and who Sluice is there.
type Server struct {
	Host     string
	Port     int // 0 means 3306
	User     string
	Password string
}

// PortNumber is the port, MySQL's default when none is set.
func (s Server) PortNumber() int {
	if s.Port == 0 {
		return 3306
	}
	return s.Port
}

// Addr is host:port.
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.PortNumber())) }

// Connect opens a session within timeout (0: none) that reads and writes
// text as utf8mb4 and times as UTC.
func Connect(ctx context.Context, s Server, timeout time.Duration, opts ...client.Option) (*client.Conn, error) {
	conn, err := client.ConnectWithContext(ctx, s.Addr(), s.User, s.Password, "", timeout, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s as %s: %w", s.Addr(), s.User, err)
	}
	for _, q := range []string{"SET NAMES utf8mb4", "SET time_zone = '+00:00'"} {
		if _, err := conn.Execute(q); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s on %s: %w", q, s.Addr(), err)
		}
	}
	return conn, nil
}

// Quote quotes a possibly qualified MySQL identifier.
func Quote(parts ...string) string {
	q := make([]string, len(parts))
	for i, p := range parts {
		q[i] = "`" + strings.ReplaceAll(p, "`", "``") + "`"
	}
	return strings.Join(q, ".")
}

// WriteLiteral writes s to b as a MySQL string literal. The backslash
// escapes are read as such unless sql_mode has NO_BACKSLASH_ESCAPES, which
// the target's sessions leave out. NUL, CR, LF and Ctrl-Z are escaped too,
// as mysql_real_escape_string escapes them, so that a statement logged or
// pasted into the mysql client stays whole; the double quote needs nothing
// in a single-quoted literal.
func WriteLiteral(b *strings.Builder, s string) {
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
}
