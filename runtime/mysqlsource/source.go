package mysqlsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/copytext"
	"github.com/sluicedb/sluice/runtime/mysqlconn"
	"github.com/sluicedb/sluice/runtime/pgtext"
)

// Config is how to reach the source and read it.
type Config struct {
	Server mysqlconn.Server
	// ServerID is the replica id the change stream registers with; it must
	// differ from every server's and every other replicator's.
	ServerID uint32
	// ZeroDateAsNull reads MySQL's zero dates as NULL; without it they
	// stop the replication with an error that names the column.
	ZeroDateAsNull bool
	// Log receives what the source notices but does not stop for.
	Log *slog.Logger
	// Selected says whether a table created while the replication runs is
	// one it replicates (the table mappings' selection rules).
	Selected func(schema, table string) bool
}

func (s *Source) log(msg string, args ...any) {
	if s.cfg.Log != nil {
		s.cfg.Log.Warn(msg, args...)
	}
}

// Source is a MySQL or MariaDB database read through its binary log.
type Source struct {
	cfg    Config
	flavor string // mysql.MariaDBFlavor or mysql.MySQLFlavor

	mu   sync.Mutex
	cols map[*runtime.Table][]column
	// pk is the single integer key column chunks split on, -1 if none.
	pk map[*runtime.Table]int

	// The snapshot: every copier reads in its own consistent snapshot;
	// the first one's binlog position is where the change stream starts,
	// and the stream's changes up to the later copiers' positions are
	// applied again, idempotently, on rows that already hold them.
	snapMu sync.Mutex
	// lockFree is set when a MySQL snapshot had to be taken without the
	// global read lock.
	lockFree bool
	first    *client.Conn
	firstMu  sync.Mutex // the first copier serves one chunk at a time
	copiers  chan *client.Conn
	all      []*client.Conn
	snap     bool
}

var (
	_ runtime.Source  = (*Source)(nil)
	_ runtime.Checker = (*Source)(nil)
)

// New returns a source; it connects when first used.
func New(cfg Config) *Source {
	return &Source{cfg: cfg, cols: map[*runtime.Table][]column{}, pk: map[*runtime.Table]int{}}
}

// connect opens a session on the source, and learns its flavor once.
func (s *Source) connect(ctx context.Context) (*client.Conn, error) {
	conn, err := mysqlconn.Connect(ctx, s.cfg.Server, 0)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if s.flavor == "" {
		r, err := conn.Execute("SELECT VERSION()")
		if err != nil {
			conn.Close()
			return nil, err
		}
		v, _ := r.GetString(0, 0)
		s.flavor = mysql.MySQLFlavor
		if strings.Contains(strings.ToLower(v), "mariadb") {
			s.flavor = mysql.MariaDBFlavor
		}
	}
	return conn, nil
}

var quote = mysqlconn.Quote

var systemSchemas = "'mysql', 'information_schema', 'performance_schema', 'sys'"

// Tables implements runtime.Source. MySQL's databases are the schemas.
func (s *Source) Tables(ctx context.Context, selected func(schema, table string) bool) ([]*runtime.Table, []runtime.UserType, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	r, err := conn.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0)
		FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (` + systemSchemas + `)
		ORDER BY TABLE_SCHEMA, TABLE_NAME`)
	if err != nil {
		return nil, nil, fmt.Errorf("list the source's tables: %w", err)
	}
	var tables []*runtime.Table
	byName := map[string]*runtime.Table{}
	for i := range r.RowNumber() {
		schema, _ := r.GetString(i, 0)
		name, _ := r.GetString(i, 1)
		if !selected(schema, name) {
			continue
		}
		rows, _ := r.GetInt(i, 2)
		bytes, _ := r.GetInt(i, 3)
		t := &runtime.Table{SourceSchema: schema, SourceName: name, Schema: schema, Name: name,
			EstimatedRows: rows, Pages: bytes / 8192, Identity: runtime.IdentityFull}
		tables = append(tables, t)
		byName[schema+"."+name] = t
	}
	if len(tables) == 0 {
		return nil, nil, nil
	}
	r, err = conn.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE,
		COALESCE(NUMERIC_PRECISION, 0), COALESCE(NUMERIC_SCALE, 0), COALESCE(DATETIME_PRECISION, 0),
		COALESCE(CHARACTER_MAXIMUM_LENGTH, 0), COALESCE(CHARACTER_SET_NAME, ''), EXTRA
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN (` + systemSchemas + `)
		ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`)
	if err != nil {
		return nil, nil, fmt.Errorf("list the source's columns: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range r.RowNumber() {
		schema, _ := r.GetString(i, 0)
		tname, _ := r.GetString(i, 1)
		t := byName[schema+"."+tname]
		if t == nil {
			continue
		}
		var c column
		c.name, _ = r.GetString(i, 2)
		c.dataType, _ = r.GetString(i, 3)
		c.dataType = strings.ToLower(c.dataType)
		c.columnType, _ = r.GetString(i, 4)
		nullable, _ := r.GetString(i, 5)
		c.nullable = nullable == "YES"
		c.precision, _ = r.GetInt(i, 6)
		c.scale, _ = r.GetInt(i, 7)
		c.fraction, _ = r.GetInt(i, 8)
		c.length, _ = r.GetInt(i, 9)
		c.charset, _ = r.GetString(i, 10)
		extra, _ := r.GetString(i, 11)
		c.unsigned = strings.Contains(strings.ToLower(c.columnType), "unsigned")
		if c.dataType == "enum" || c.dataType == "set" {
			c.labels = labels(c.columnType)
		}
		typ, err := pgType(c)
		if err != nil {
			return nil, nil, fmt.Errorf("table %s: %w", t.QualifiedSource(), err)
		}
		col := runtime.Column{SourceName: c.name, Name: c.name, Type: typ, MySQLType: c.columnType, NotNull: !c.nullable}
		if strings.Contains(strings.ToLower(extra), "auto_increment") && typ != "numeric(20)" {
			// The target gives new rows keys after a cutover, as the
			// source would; SequenceValues carries the counter over.
			col.Identity = 'd'
		}
		// Generated columns are copied as the values the source computed:
		// their expressions are MySQL's, not PostgreSQL's.
		t.Columns = append(t.Columns, col)
		s.cols[t] = append(s.cols[t], c)
	}
	if err := s.keys(conn, byName); err != nil {
		return nil, nil, err
	}
	return tables, nil, nil
}

// keys finds each table's primary key, or failing that a unique key over
// NOT NULL columns, and the secondary indexes the target builds.
func (s *Source) keys(conn *client.Conn, byName map[string]*runtime.Table) error {
	r, err := conn.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA NOT IN (` + systemSchemas + `)
		ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, NON_UNIQUE, INDEX_NAME, SEQ_IN_INDEX`)
	if err != nil {
		return fmt.Errorf("list the source's indexes: %w", err)
	}
	type index struct {
		t       *runtime.Table
		name    string
		unique  bool
		cols    []int
		usable  bool // plain columns, no prefix, no expression
		notNull bool
	}
	var order []*index
	idx := map[string]*index{}
	for i := range r.RowNumber() {
		schema, _ := r.GetString(i, 0)
		tname, _ := r.GetString(i, 1)
		t := byName[schema+"."+tname]
		if t == nil {
			continue
		}
		name, _ := r.GetString(i, 2)
		nonUnique, _ := r.GetInt(i, 3)
		colName, _ := r.GetString(i, 4)
		sub, _ := r.GetInt(i, 5)
		k := schema + "." + tname + "." + name
		ix := idx[k]
		if ix == nil {
			ix = &index{t: t, name: name, unique: nonUnique == 0, usable: true, notNull: true}
			idx[k] = ix
			order = append(order, ix)
		}
		pos := -1
		for j, c := range t.Columns {
			if c.SourceName == colName {
				pos = j
			}
		}
		if pos < 0 || sub > 0 {
			ix.usable = false
			continue
		}
		ix.cols = append(ix.cols, pos)
		ix.notNull = ix.notNull && t.Columns[pos].NotNull
	}
	for _, ix := range order {
		t := ix.t
		if !ix.usable {
			t.Warnings = append(t.Warnings, fmt.Sprintf("index %s is not created on the target: it indexes a prefix or an expression", ix.name))
			continue
		}
		switch {
		case len(t.Key) == 0 && ix.unique && ix.notNull:
			t.Key, t.HasPrimaryKey, t.Identity = ix.cols, ix.name == "PRIMARY", runtime.IdentityKey
			if ix.name == "PRIMARY" {
				// The primary key comes first: the target builds it first.
				t.Constraints = append([]runtime.Constraint{{Name: t.Name + "_pkey", Def: "PRIMARY KEY (" + colList(t, ix.cols) + ")"}}, t.Constraints...)
			} else {
				t.Constraints = append(t.Constraints, runtime.Constraint{Name: t.Name + "_" + ix.name, Def: "UNIQUE (" + colList(t, ix.cols) + ")"})
			}
		case ix.unique:
			t.Constraints = append(t.Constraints, runtime.Constraint{Name: t.Name + "_" + ix.name, Def: "UNIQUE (" + colList(t, ix.cols) + ")"})
		default:
			t.Indexes = append(t.Indexes, runtime.Index{Name: t.Name + "_" + ix.name,
				Def: fmt.Sprintf("CREATE INDEX %s ON %s (%s)", pgtext.Ident(t.Name+"_"+ix.name), runtime.TablePlaceholder, colList(t, ix.cols))})
		}
	}
	for _, t := range byName {
		s.pk[t] = -1
		if len(t.Key) == 1 {
			switch s.cols[t][t.Key[0]].dataType {
			case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
				s.pk[t] = t.Key[0]
			}
		}
	}
	return nil
}

func colList(t *runtime.Table, cols []int) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = pgtext.Ident(t.Columns[c].Name)
	}
	return strings.Join(names, ", ")
}

// checkCapture verifies that the binlog carries what the change stream
// needs, with the fix for each setting.
func checkCapture(conn *client.Conn) error {
	r, err := conn.Execute("SELECT @@log_bin, @@binlog_format, @@binlog_row_image")
	if err != nil {
		return fmt.Errorf("read the source's binlog settings: %w", err)
	}
	logBin, _ := r.GetInt(0, 0)
	format, _ := r.GetString(0, 1)
	image, _ := r.GetString(0, 2)
	switch {
	case logBin != 1:
		return errors.New("the source does not write a binary log (log_bin is OFF): start it with log_bin (and server_id) set; CDC reads the binlog")
	case !strings.EqualFold(format, "ROW"):
		return fmt.Errorf("the source's binlog_format is %s: set binlog_format=ROW (SET GLOBAL binlog_format = 'ROW' and in the server's configuration); CDC needs row events", format)
	case !strings.EqualFold(image, "FULL"):
		return fmt.Errorf("the source's binlog_row_image is %s: set binlog_row_image=FULL; CDC needs whole rows before and after each change", image)
	}
	return nil
}

// Check implements runtime.Checker.
func (s *Source) Check(ctx context.Context) []string {
	conn, err := s.connect(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	defer conn.Close()
	var problems []string
	if err := checkCapture(conn); err != nil {
		problems = append(problems, err.Error())
	}
	r, err := conn.Execute("SHOW GRANTS FOR CURRENT_USER()")
	if err != nil {
		return append(problems, fmt.Sprintf("read the source user's privileges: %v", err))
	}
	var grants []string
	for i := range r.RowNumber() {
		g, _ := r.GetString(i, 0)
		grants = append(grants, strings.ToUpper(g))
	}
	all := strings.Join(grants, "\n")
	has := func(privs ...string) bool {
		for _, g := range grants {
			if strings.Contains(g, " ON *.* ") && strings.Contains(g, "ALL PRIVILEGES") {
				return true
			}
		}
		for _, p := range privs {
			if strings.Contains(all, p) {
				return true
			}
		}
		return false
	}
	if !has("REPLICATION SLAVE", "REPLICATION REPLICA") {
		problems = append(problems, fmt.Sprintf("the source user %s may not read the binlog. Fix: GRANT REPLICATION SLAVE ON *.* TO %s", s.cfg.Server.User, s.cfg.Server.User))
	}
	if !has("REPLICATION CLIENT", "BINLOG MONITOR") {
		problems = append(problems, fmt.Sprintf("the source user %s may not ask for binlog positions. Fix: GRANT REPLICATION CLIENT ON *.* TO %s (BINLOG MONITOR on MariaDB 10.5 and later)", s.cfg.Server.User, s.cfg.Server.User))
	}
	if p := binlogRetention(conn); p != "" {
		problems = append(problems, p)
	}
	return problems
}

// minRetention is the binlog retention a replication needs to resume after
// a stop of a day, as DMS asks of its MySQL sources.
const minRetention = 24 * time.Hour

// binlogRetention reports a binlog retention too short to resume from,
// or "" when it is long enough or unlimited (0).
func binlogRetention(conn *client.Conn) string {
	secs := int64(-1)
	if r, err := conn.Execute("SELECT @@binlog_expire_logs_seconds"); err == nil && r.RowNumber() > 0 {
		secs, _ = r.GetInt(0, 0)
	}
	if secs <= 0 {
		// Older servers (MariaDB before 10.6, MySQL 5.7) count days; when
		// both are set, the servers honour the non-zero one.
		if r, err := conn.Execute("SELECT @@expire_logs_days"); err == nil && r.RowNumber() > 0 {
			v, _ := r.GetString(0, 0)
			if d, _ := strconv.ParseFloat(v, 64); d > 0 {
				secs = int64(d * 86400)
			}
		}
	}
	if secs <= 0 || time.Duration(secs)*time.Second >= minRetention {
		return ""
	}
	return fmt.Sprintf("the source keeps binlogs only %s: a replication stopped longer cannot resume. Fix: SET PERSIST binlog_expire_logs_seconds = %d (at least a day; on RDS: CALL mysql.rds_set_configuration('binlog retention hours', 24))", time.Duration(secs)*time.Second, int64(minRetention/time.Second))
}

// masterStatus returns the server's current binlog position.
func masterStatus(conn *client.Conn) (runtime.BinlogPos, error) {
	r, err := conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		r, err = conn.Execute("SHOW BINARY LOG STATUS") // MySQL 8.4 renamed it
	}
	if err != nil {
		return runtime.BinlogPos{}, fmt.Errorf("read the source's binlog position (needs the REPLICATION CLIENT privilege): %w", err)
	}
	if r.RowNumber() == 0 {
		return runtime.BinlogPos{}, errors.New("the source reports no binlog position: is log_bin on?")
	}
	file, _ := r.GetString(0, 0)
	pos, _ := r.GetUint(0, 1)
	return runtime.BinlogPos{File: file, Pos: uint32(pos)}, nil
}

// Prepare implements runtime.Source.
func (s *Source) Prepare(ctx context.Context, tables []*runtime.Table, opts runtime.PrepareOptions) (runtime.Position, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Capture {
		if err := checkCapture(conn); err != nil {
			conn.Close()
			return nil, err
		}
	}
	if opts.Snapshot {
		pos, err := s.openSnapshot(conn)
		if err == nil && s.lockFree {
			err = checkLockFree(tables)
		}
		if err != nil {
			conn.Close()
			return nil, err
		}
		if !opts.Capture {
			return nil, nil
		}
		return pos, nil
	}
	defer conn.Close()
	if !opts.Capture || opts.Resume {
		return nil, nil
	}
	if !opts.FromTime.IsZero() {
		return s.positionAt(ctx, conn, opts.FromTime)
	}
	if from, ok := opts.From.(runtime.GTIDSet); ok {
		// The server finds the GTIDs when the stream starts, and says
		// there if it no longer has them.
		return from, nil
	}
	if from, ok := opts.From.(runtime.BinlogPos); ok {
		// The binlog is history the server keeps: any position in a file
		// it still has can be read.
		if err := checkBinlogKept(conn, from); err != nil {
			return nil, err
		}
		return from, nil
	}
	return masterStatus(conn)
}

// openSnapshot starts conn's consistent snapshot and returns the binlog
// position it is at. MariaDB says so itself (binlog_snapshot_file and
// _position, no lock); MySQL does not, so the position is read under a
// global read lock held only for that moment.
func (s *Source) openSnapshot(conn *client.Conn) (runtime.BinlogPos, error) {
	start := func() error {
		_, err := conn.Execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
		if err == nil {
			_, err = conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
		}
		if err != nil {
			return fmt.Errorf("start a consistent snapshot on the source: %w", err)
		}
		return nil
	}
	var pos runtime.BinlogPos
	if s.flavor == mysql.MariaDBFlavor {
		if err := start(); err != nil {
			return pos, err
		}
		var err error
		if pos, err = mariadbSnapshotPos(conn); err != nil {
			return pos, err
		}
		if pos.File == "" {
			return pos, errors.New("the source reports no binlog position for the snapshot: is log_bin on?")
		}
	} else if _, err := conn.Execute("FLUSH TABLES WITH READ LOCK"); err != nil {
		var me *mysql.MyError
		if !errors.As(err, &me) || (me.Code != 1227 && me.Code != 1045) {
			return pos, fmt.Errorf("take the short global read lock of a consistent MySQL snapshot: %w", err)
		}
		// Not allowed to lock: the low watermark is the binlog position
		// read before the snapshot starts. The changes between it and the
		// snapshot are applied again on rows that may already hold them,
		// as upserts and deletes by key, so keyed tables converge
		// exactly; tables without a key cannot be copied this way (see
		// checkLockFree).
		if pos, err = masterStatus(conn); err != nil {
			return pos, err
		}
		if err := start(); err != nil {
			return pos, err
		}
		s.lockFree = true
		s.log("the source user may not FLUSH TABLES WITH READ LOCK: the snapshot is taken without a lock and reconciled against the binlog from the position read before it (grant RELOAD for a locked snapshot)")
	} else {
		err := start()
		if err == nil {
			pos, err = masterStatus(conn)
		}
		if _, uerr := conn.Execute("UNLOCK TABLES"); err == nil && uerr != nil {
			err = uerr
		}
		if err != nil {
			return pos, err
		}
	}
	s.snapMu.Lock()
	s.first, s.snap = conn, true
	s.all = append(s.all, conn)
	s.snapMu.Unlock()
	return pos, nil
}

// mariadbSnapshotPos reads where in the binlog the open consistent
// snapshot of a MariaDB session is; File is empty when the server writes no
// binlog.
func mariadbSnapshotPos(conn *client.Conn) (runtime.BinlogPos, error) {
	var pos runtime.BinlogPos
	r, err := conn.Execute("SHOW STATUS WHERE Variable_name IN ('binlog_snapshot_file', 'binlog_snapshot_position')")
	if err != nil {
		return pos, fmt.Errorf("read the snapshot's binlog position: %w", err)
	}
	for i := range r.RowNumber() {
		name, _ := r.GetString(i, 0)
		val, _ := r.GetString(i, 1)
		if strings.EqualFold(name, "binlog_snapshot_file") {
			pos.File = val
		} else {
			n, _ := strconv.ParseUint(val, 10, 32)
			pos.Pos = uint32(n)
		}
	}
	return pos, nil
}

// checkLockFree refuses tables whose rows a snapshot without a lock could
// copy twice: those without a key, which replayed inserts would duplicate.
func checkLockFree(tables []*runtime.Table) error {
	for _, t := range tables {
		if t.Identity != runtime.IdentityKey {
			return fmt.Errorf("table %s has no primary or unique key, and the source user may not take the moment's global read lock (FLUSH TABLES WITH READ LOCK) a consistent copy of it needs: grant RELOAD to the user, add a primary key, or exclude the table", t.QualifiedSource())
		}
	}
	return nil
}

// Snapshot implements runtime.Source.
func (s *Source) Snapshot(ctx context.Context) (runtime.Position, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	pos, err := s.openSnapshot(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return pos, nil
}

// Chunks implements runtime.Source: a table with a single integer key is
// split into key ranges; others are read whole.
func (s *Source) Chunks(ctx context.Context, t *runtime.Table, chunkPages int64) ([]runtime.Chunk, error) {
	whole := []runtime.Chunk{{Table: t, Count: 1}}
	s.mu.Lock()
	pk := s.pk[t]
	s.mu.Unlock()
	if pk < 0 || chunkPages <= 0 || t.Pages <= chunkPages {
		return whole, nil
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	col := quote(t.Columns[pk].SourceName)
	r, err := conn.Execute("SELECT CAST(MIN(" + col + ") AS SIGNED), CAST(MAX(" + col + ") AS SIGNED) FROM " + quote(t.SourceSchema, t.SourceName))
	if err != nil {
		return nil, fmt.Errorf("key range of %s: %w", t.QualifiedSource(), err)
	}
	lo, err1 := r.GetInt(0, 0)
	hi, err2 := r.GetInt(0, 1)
	if err1 != nil || err2 != nil || hi <= lo {
		return whole, nil
	}
	n := min(t.Pages/chunkPages+1, 256)
	step := (hi-lo)/n + 1
	var out []runtime.Chunk
	for i := int64(0); i < n; i++ {
		a := lo + i*step
		if a > hi {
			break
		}
		out = append(out, runtime.Chunk{Table: t, Index: int(i), Lo: a, Hi: a + step - 1})
	}
	// The first and last ranges are open, so rows written after the
	// bounds were read are not missed.
	out[0].Lo = minOpen
	out[len(out)-1].Hi = maxOpen
	for i := range out {
		out[i].Count = len(out)
	}
	return out, nil
}

// minOpen and maxOpen mark a chunk range open at that end.
const (
	minOpen = -1 << 63
	maxOpen = 1<<63 - 1
)

// copier returns a connection inside a consistent snapshot: the first
// one for tables without a key (their rows cannot be applied twice
// harmlessly), else a free one, opening one if all are busy.
func (s *Source) copier(ctx context.Context, keyed bool) (*client.Conn, func(), error) {
	s.snapMu.Lock()
	if !s.snap {
		s.snapMu.Unlock()
		return nil, nil, errors.New("no snapshot is open: Prepare with Snapshot first")
	}
	if !keyed {
		first := s.first
		s.snapMu.Unlock()
		s.firstMu.Lock()
		return first, s.firstMu.Unlock, nil
	}
	if s.copiers == nil {
		s.copiers = make(chan *client.Conn, 64)
	}
	select {
	case c := <-s.copiers:
		s.snapMu.Unlock()
		return c, func() { s.copiers <- c }, nil
	default:
	}
	s.snapMu.Unlock()
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.openSnapshotConn(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, func() { s.copiers <- conn }, nil
}

// openSnapshotConn starts a consistent snapshot on an extra copier.
func (s *Source) openSnapshotConn(conn *client.Conn) (runtime.BinlogPos, error) {
	if _, err := conn.Execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return runtime.BinlogPos{}, err
	}
	if _, err := conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return runtime.BinlogPos{}, fmt.Errorf("start a consistent snapshot on the source: %w", err)
	}
	s.snapMu.Lock()
	s.all = append(s.all, conn)
	s.snapMu.Unlock()
	return runtime.BinlogPos{}, nil
}

// Copy implements runtime.Source: the chunk's rows in COPY text format.
func (s *Source) Copy(ctx context.Context, c runtime.Chunk, f runtime.CopyFormat, w io.Writer) error {
	if f != runtime.CopyText {
		return errors.New("a MySQL source writes COPY text only")
	}
	t := c.Table
	s.mu.Lock()
	cols, pk := s.cols[t], s.pk[t]
	s.mu.Unlock()
	conn, release, err := s.copier(ctx, t.Identity == runtime.IdentityKey)
	if err != nil {
		return err
	}
	defer release()
	copied := t.Copied()
	sel := make([]string, len(copied))
	for i, ci := range copied {
		sel[i] = quote(cols[ci].name)
		if cols[ci].dataType == "float" {
			// The text protocol prints a float with 6 digits; as a double
			// it carries every bit of the float.
			sel[i] = "CAST(" + sel[i] + " AS DOUBLE)"
		}
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + quote(t.SourceSchema, t.SourceName)
	if c.Count > 1 {
		col := quote(cols[pk].name)
		var conds []string
		if c.Lo != minOpen {
			conds = append(conds, col+" >= "+strconv.FormatInt(c.Lo, 10))
		}
		if c.Hi != maxOpen {
			conds = append(conds, col+" <= "+strconv.FormatInt(c.Hi, 10))
		}
		if len(conds) > 0 {
			q += " WHERE " + strings.Join(conds, " AND ")
		}
	}
	var line []byte
	var result mysql.Result
	err = conn.ExecuteSelectStreaming(q, &result, func(row []mysql.FieldValue) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		line = line[:0]
		for i, ci := range copied {
			if i > 0 {
				line = append(line, '\t')
			}
			v, err := s.render(&cols[ci], row[i].Value())
			if err != nil {
				return fmt.Errorf("%s: %w", t.QualifiedSource(), err)
			}
			line = copytext.Copy.AppendField(line, v)
		}
		line = append(line, '\n')
		_, err := w.Write(line)
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("read %s from the source: %w", t.QualifiedSource(), err)
	}
	return nil
}

// EndSnapshot implements runtime.Source.
func (s *Source) EndSnapshot(context.Context) error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	for _, c := range s.all {
		_ = c.Close()
	}
	s.all, s.copiers, s.first, s.snap = nil, nil, nil, false
	return nil
}

// SequenceValues implements runtime.Source: each AUTO_INCREMENT counter,
// for the identity column the target made of it.
func (s *Source) SequenceValues(ctx context.Context, tables []*runtime.Table) ([]runtime.SequenceValue, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var out []runtime.SequenceValue
	for _, t := range tables {
		col := ""
		for _, c := range t.Columns {
			if c.Identity != 0 && !c.Removed {
				col = c.SourceName
			}
		}
		if col == "" {
			continue
		}
		r, err := conn.Execute(`SELECT COALESCE(AUTO_INCREMENT, 1) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, t.SourceSchema, t.SourceName)
		if err != nil {
			return nil, fmt.Errorf("read the AUTO_INCREMENT of %s: %w", t.QualifiedSource(), err)
		}
		next, _ := r.GetInt(0, 0)
		if next <= 1 {
			out = append(out, runtime.SequenceValue{Table: t, Column: col, LastValue: 1, IsCalled: false})
			continue
		}
		out = append(out, runtime.SequenceValue{Table: t, Column: col, LastValue: next - 1, IsCalled: true})
	}
	return out, nil
}

// Close implements runtime.Source.
func (s *Source) Close(ctx context.Context) error { return s.EndSnapshot(ctx) }
