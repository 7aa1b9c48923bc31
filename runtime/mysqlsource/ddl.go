package mysqlsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	tmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
	"github.com/pingcap/tidb/pkg/parser/types"

	"github.com/sluicedb/sluice/runtime"
)

// ddl follows a statement from the binlog: the tables it changes get a new
// shape, from which the following row events are read, and the target is
// told. Statements on tables the replication does not read are ignored;
// one Sluice cannot follow stops the replication with its text, so rows are
// never read against the wrong columns.
func (st *stream) ddl(ctx context.Context, schema, sql string) error {
	stmts, _, err := parser.New().ParseSQL(sql)
	if err != nil {
		// Statements the parser does not know (CREATE FUNCTION, GRANT, …)
		// change no table Sluice reads.
		st.src.log("a statement in the binlog was not parsed; it is not applied", "statement", clipSQL(sql), "error", err)
		return nil
	}
	name := func(tn *ast.TableName) string {
		s := tn.Schema.O
		if s == "" {
			s = schema
		}
		return s + "\x00" + tn.Name.O
	}
	for _, stmt := range stmts {
		switch x := stmt.(type) {
		case *ast.AlterTableStmt:
			t := st.tables[name(x.Table)]
			if t == nil {
				continue
			}
			for _, spec := range x.Specs {
				if err := st.alter(ctx, t, spec, sql); err != nil {
					return err
				}
				t = st.tables[name(x.Table)]
				if spec.Tp == ast.AlterTableRenameTable {
					t = st.tables[name(spec.NewTable)]
				}
			}
		case *ast.RenameTableStmt:
			for _, tt := range x.TableToTables {
				t := st.tables[name(tt.OldTable)]
				if t == nil {
					continue
				}
				if err := st.rename(ctx, t, tt.NewTable, schema, sql); err != nil {
					return err
				}
			}
		case *ast.DropTableStmt:
			for _, tn := range x.Tables {
				t := st.tables[name(tn)]
				if t == nil {
					continue
				}
				delete(st.tables, name(tn))
				if err := st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpDDL, DDL: &runtime.DDL{Kind: runtime.DDLDropTable, Old: t, Statement: sql}}); err != nil {
					return err
				}
			}
		case *ast.TruncateTableStmt:
			if t := st.tables[name(x.Table)]; t != nil {
				if err := st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpTruncate, Tables: []*runtime.Table{t}}); err != nil {
					return err
				}
			}
		case *ast.CreateTableStmt:
			s := x.Table.Schema.O
			if s == "" {
				s = schema
			}
			if st.tables[name(x.Table)] != nil || st.src.cfg.Selected == nil || !st.src.cfg.Selected(s, x.Table.Name.O) {
				continue
			}
			if x.ReferTable != nil || x.Select != nil {
				st.src.log("a table created LIKE another or AS SELECT is not replicated; reload the target to include it", "statement", clipSQL(sql))
				continue
			}
			if err := st.create(ctx, s, x, sql); err != nil {
				return err
			}
		}
	}
	return nil
}

func clipSQL(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// reshape makes the new Table and columns of t after a change: columns
// edited by edit, the key found again by name (renamed through renames).
func (st *stream) reshape(t *runtime.Table, edit func(cols []runtime.Column, src []column) ([]runtime.Column, []column), renames map[string]string) *runtime.Table {
	st.src.mu.Lock()
	oldSrc := st.src.cols[t]
	st.src.mu.Unlock()
	nt := *t
	cols, src := edit(append([]runtime.Column(nil), t.Columns...), append([]column(nil), oldSrc...))
	nt.Columns = cols
	nt.Key = nil
	for _, k := range t.Key {
		want := t.Columns[k].SourceName
		if r, ok := renames[want]; ok {
			want = r
		}
		for i, c := range cols {
			if c.SourceName == want {
				nt.Key = append(nt.Key, i)
			}
		}
	}
	if len(nt.Key) != len(t.Key) {
		// A key column went: rows are found by their full image, which
		// the binlog carries.
		nt.Key, nt.Identity, nt.HasPrimaryKey = nil, runtime.IdentityFull, false
	}
	st.src.mu.Lock()
	st.src.cols[&nt] = src
	st.src.pk[&nt] = -1
	if len(nt.Key) == 1 {
		switch src[nt.Key[0]].dataType {
		case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
			st.src.pk[&nt] = nt.Key[0]
		}
	}
	st.src.mu.Unlock()
	st.tables[nt.SourceSchema+"\x00"+nt.SourceName] = &nt
	return &nt
}

func indexOf(cols []runtime.Column, name string) int {
	for i, c := range cols {
		if strings.EqualFold(c.SourceName, name) {
			return i
		}
	}
	return -1
}

// position is where a column goes: at the end, first, or after another.
func position(cols []runtime.Column, p *ast.ColumnPosition) int {
	if p == nil {
		return len(cols)
	}
	switch p.Tp {
	case ast.ColumnPositionFirst:
		return 0
	case ast.ColumnPositionAfter:
		if i := indexOf(cols, p.RelativeColumn.Name.O); i >= 0 {
			return i + 1
		}
	}
	return len(cols)
}

func insertAt[T any](s []T, i int, v T) []T {
	s = append(s, v)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

func (st *stream) alter(ctx context.Context, t *runtime.Table, spec *ast.AlterTableSpec, sql string) error {
	emit := func(d *runtime.DDL) error {
		d.Statement = sql
		return st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpDDL, DDL: d})
	}
	unsupported := func() error {
		return fmt.Errorf("the binlog changes table %s with %q, which Sluice cannot follow yet: reload the table (ReloadReplicationTables) or the target after the change", t.QualifiedSource(), clipSQL(sql))
	}
	switch spec.Tp {
	case ast.AlterTableAddColumns:
		for _, def := range spec.NewColumns {
			src, col, dflt, err := st.src.fromDef(def)
			if err != nil {
				return fmt.Errorf("table %s: %w", t.QualifiedSource(), err)
			}
			at := position(t.Columns, spec.Position)
			nt := st.reshape(t, func(cols []runtime.Column, s []column) ([]runtime.Column, []column) {
				return insertAt(cols, at, col), insertAt(s, at, src)
			}, nil)
			if err := emit(&runtime.DDL{Kind: runtime.DDLAddColumn, Old: t, New: nt, Column: at, Default: dflt}); err != nil {
				return err
			}
			t = nt
		}
	case ast.AlterTableDropColumn:
		i := indexOf(t.Columns, spec.OldColumnName.Name.O)
		if i < 0 {
			return nil
		}
		nt := st.reshape(t, func(cols []runtime.Column, s []column) ([]runtime.Column, []column) {
			return append(cols[:i], cols[i+1:]...), append(s[:i], s[i+1:]...)
		}, nil)
		return emit(&runtime.DDL{Kind: runtime.DDLDropColumn, Old: t, New: nt, Column: i})
	case ast.AlterTableModifyColumn, ast.AlterTableChangeColumn, ast.AlterTableRenameColumn:
		oldName := ""
		switch {
		case spec.OldColumnName != nil:
			oldName = spec.OldColumnName.Name.O
		case len(spec.NewColumns) > 0:
			oldName = spec.NewColumns[0].Name.Name.O
		}
		i := indexOf(t.Columns, oldName)
		if i < 0 {
			return nil
		}
		st.src.mu.Lock()
		src := st.src.cols[t][i]
		st.src.mu.Unlock()
		col := t.Columns[i]
		if spec.Tp == ast.AlterTableRenameColumn {
			src.name, col.SourceName, col.Name = spec.NewColumnName.Name.O, spec.NewColumnName.Name.O, spec.NewColumnName.Name.O
		} else {
			var err error
			if src, col, _, err = st.src.fromDef(spec.NewColumns[0]); err != nil {
				return fmt.Errorf("table %s: %w", t.QualifiedSource(), err)
			}
		}
		at := i
		if spec.Position != nil && spec.Position.Tp != ast.ColumnPositionNone {
			rest := append(append([]runtime.Column(nil), t.Columns[:i]...), t.Columns[i+1:]...)
			at = position(rest, spec.Position)
		}
		nt := st.reshape(t, func(cols []runtime.Column, s []column) ([]runtime.Column, []column) {
			cols, s = append(cols[:i], cols[i+1:]...), append(s[:i], s[i+1:]...)
			return insertAt(cols, at, col), insertAt(s, at, src)
		}, map[string]string{oldName: col.SourceName})
		return emit(&runtime.DDL{Kind: runtime.DDLAlterColumn, Old: t, New: nt, Column: at, OldColumn: i})
	case ast.AlterTableRenameTable:
		return st.rename(ctx, t, spec.NewTable, t.SourceSchema, sql)
	case ast.AlterTableAddConstraint, ast.AlterTableDropIndex, ast.AlterTableDropPrimaryKey, ast.AlterTableRenameIndex,
		ast.AlterTableOption, ast.AlterTableAlterColumn, ast.AlterTableLock, ast.AlterTableAlgorithm, ast.AlterTableForce:
		// Indexes, defaults and table options do not change the rows.
		return nil
	default:
		return unsupported()
	}
	return nil
}

func (st *stream) rename(ctx context.Context, t *runtime.Table, to *ast.TableName, schema, sql string) error {
	newSchema := to.Schema.O
	if newSchema == "" {
		newSchema = schema
	}
	delete(st.tables, t.SourceSchema+"\x00"+t.SourceName)
	nt := *t
	nt.SourceSchema, nt.SourceName, nt.Schema, nt.Name = newSchema, to.Name.O, newSchema, to.Name.O
	st.src.mu.Lock()
	st.src.cols[&nt], st.src.pk[&nt] = st.src.cols[t], st.src.pk[t]
	st.src.mu.Unlock()
	st.tables[newSchema+"\x00"+nt.SourceName] = &nt
	return st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpDDL, DDL: &runtime.DDL{Kind: runtime.DDLRenameTable, Old: t, New: &nt, Statement: sql}})
}

// create starts replicating a table created in the binlog that the
// selection rules select: its rows follow, from an empty table.
func (st *stream) create(ctx context.Context, schema string, x *ast.CreateTableStmt, sql string) error {
	t := &runtime.Table{SourceSchema: schema, SourceName: x.Table.Name.O, Schema: schema, Name: x.Table.Name.O, Identity: runtime.IdentityFull}
	var src []column
	var pk []string
	for _, def := range x.Cols {
		c, col, _, err := st.src.fromDef(def)
		if err != nil {
			return fmt.Errorf("table %s.%s: %w", schema, t.SourceName, err)
		}
		for _, o := range def.Options {
			switch o.Tp {
			case ast.ColumnOptionPrimaryKey:
				pk = []string{c.name}
			case ast.ColumnOptionAutoIncrement:
				if col.Type != "numeric(20)" {
					col.Identity = 'd'
				}
			}
		}
		t.Columns = append(t.Columns, col)
		src = append(src, c)
	}
	for _, k := range x.Constraints {
		if k.Tp == ast.ConstraintPrimaryKey {
			pk = nil
			for _, part := range k.Keys {
				if part.Column != nil {
					pk = append(pk, part.Column.Name.O)
				}
			}
		}
	}
	for _, name := range pk {
		if i := indexOf(t.Columns, name); i >= 0 {
			t.Key = append(t.Key, i)
			t.Columns[i].NotNull = true
		}
	}
	if len(t.Key) > 0 && len(t.Key) == len(pk) {
		t.HasPrimaryKey, t.Identity = true, runtime.IdentityKey
		t.Constraints = []runtime.Constraint{{Name: t.Name + "_pkey", Def: "PRIMARY KEY (" + colList(t, t.Key) + ")"}}
	} else {
		t.Key = nil
	}
	st.src.mu.Lock()
	st.src.cols[t], st.src.pk[t] = src, -1
	st.src.mu.Unlock()
	st.tables[schema+"\x00"+t.SourceName] = t
	return st.emit.Emit(ctx, &runtime.Change{Op: runtime.OpDDL, DDL: &runtime.DDL{Kind: runtime.DDLCreateTable, New: t, Statement: sql}})
}

// fromDef reads a column definition from a DDL statement as the catalog
// would describe it, with the value the rows already in the table get.
func (s *Source) fromDef(def *ast.ColumnDef) (column, runtime.Column, runtime.Value, error) {
	tp := def.Tp
	c := column{
		name:     def.Name.Name.O,
		dataType: strings.ToLower(types.TypeToStr(tp.GetType(), tp.GetCharset())),
		unsigned: tmysql.HasUnsignedFlag(tp.GetFlag()),
		charset:  tp.GetCharset(),
		nullable: true,
		labels:   tp.GetElems(),
	}
	switch c.dataType {
	case "text", "tinytext", "mediumtext", "longtext", "char", "varchar":
		if c.charset == "binary" {
			c.dataType = strings.NewReplacer("text", "blob", "char", "binary").Replace(c.dataType)
		}
	}
	if tmysql.HasBinaryFlag(tp.GetFlag()) && (c.dataType == "char" || c.dataType == "varchar") {
		c.dataType = strings.Replace(c.dataType, "char", "binary", 1)
	}
	c.columnType = tp.InfoSchemaStr()
	switch c.dataType {
	case "decimal":
		c.precision, c.scale = int64(max(tp.GetFlen(), 10)), int64(max(tp.GetDecimal(), 0))
		if tp.GetFlen() < 0 {
			c.precision = 10
		}
	case "bit":
		c.precision = int64(max(tp.GetFlen(), 1))
	case "datetime", "timestamp", "time":
		c.fraction = int64(max(tp.GetDecimal(), 0))
	case "char", "varchar", "binary", "varbinary":
		c.length = int64(max(tp.GetFlen(), 1))
	}
	var dflt any
	hasDefault := false
	auto := false
	for _, o := range def.Options {
		switch o.Tp {
		case ast.ColumnOptionNotNull, ast.ColumnOptionPrimaryKey:
			c.nullable = false
		case ast.ColumnOptionNull:
			c.nullable = true
		case ast.ColumnOptionAutoIncrement:
			auto = true
		case ast.ColumnOptionDefaultValue:
			if v, ok := o.Expr.(*test_driver.ValueExpr); ok {
				hasDefault, dflt = true, v.GetValue()
				if d, ok := dflt.(*test_driver.MyDecimal); ok {
					dflt = d.String()
				}
			}
		}
	}
	typ, err := pgType(c)
	if err != nil {
		return c, runtime.Column{}, runtime.Value{}, err
	}
	col := runtime.Column{SourceName: c.name, Name: c.name, Type: typ, MySQLType: c.columnType, NotNull: !c.nullable}
	if !hasDefault && !c.nullable && !auto {
		// MySQL fills the rows already there with the type's implicit
		// default.
		hasDefault, dflt = true, implicitDefault(c)
	}
	var v runtime.Value
	if hasDefault && dflt != nil {
		if v, err = s.render(&c, dflt); err != nil {
			return c, col, runtime.Value{}, err
		}
	}
	return c, col, v, nil
}

// implicitDefault is the value MySQL gives a NOT NULL column without a
// default in rows that exist when it is added.
func implicitDefault(c column) any {
	switch c.dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "float", "double", "year":
		return "0"
	case "bit":
		return int64(0)
	case "enum":
		if len(c.labels) > 0 {
			return c.labels[0]
		}
	case "time":
		return "00:00:00"
	case "date", "datetime", "timestamp":
		return nil // a zero date; the rows take NULL on the target
	}
	return ""
}
