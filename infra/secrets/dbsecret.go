package secrets

import (
	"fmt"
	"log/slog"
)

const redacted = "[redacted]"

// DBSecret is a database secret as RDS and DMS store them in Secrets Manager.
// It redacts its password wherever fmt or slog prints it.
type DBSecret struct {
	Username, Password, Host string
	Port                     int
	DBName                   string
}

// String is used by %v, %+v and %s.
func (s DBSecret) String() string {
	return fmt.Sprintf("{Username:%s Password:%s Host:%s Port:%d DBName:%s}", s.Username, redacted, s.Host, s.Port, s.DBName)
}

// GoString is used by %#v.
func (s DBSecret) GoString() string {
	return fmt.Sprintf("secrets.DBSecret{Username:%q, Password:%q, Host:%q, Port:%d, DBName:%q}", s.Username, redacted, s.Host, s.Port, s.DBName)
}

// LogValue makes slog print the secret as a group without its password.
func (s DBSecret) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("username", s.Username),
		slog.String("password", redacted),
		slog.String("host", s.Host),
		slog.Int("port", s.Port),
		slog.String("dbname", s.DBName),
	)
}
