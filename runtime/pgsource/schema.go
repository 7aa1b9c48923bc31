package pgsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/sluicedb/sluice/runtime"
	"github.com/sluicedb/sluice/runtime/pgtext"
)

// firstNormalOID is where user-defined objects' OIDs start; types below it
// are built in and have the same OID in every database.
const firstNormalOID = 16384

// tableRow is one table as the catalog lists it.
type tableRow struct {
	oid             uint32
	schema, name    string
	kind, replident string
	persistence     string
	pages, rows     int64
	canSelect       bool
	qualified       string // regclass text with an empty search_path
}

// Tables implements runtime.Source.
func (s *Source) Tables(ctx context.Context, selected func(schema, table string) bool) ([]*runtime.Table, []runtime.UserType, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relreplident::text, c.relpersistence::text,
       CASE WHEN c.relkind = 'p' -- pg_partition_tree lists nothing for a plain table
            THEN (SELECT coalesce(sum(pg_relation_size(p.relid)), 0)::int8 FROM pg_partition_tree(c.oid) p)
            ELSE pg_relation_size(c.oid) END / current_setting('block_size')::int8,
       greatest(c.reltuples, 0)::int8, has_table_privilege(c.oid, 'SELECT'), c.oid::regclass::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, nil, fmt.Errorf("list tables: %w", err)
	}
	var list []tableRow
	for rows.Next() {
		var r tableRow
		if err := rows.Scan(&r.oid, &r.schema, &r.name, &r.kind, &r.replident, &r.persistence, &r.pages, &r.rows, &r.canSelect, &r.qualified); err != nil {
			return nil, nil, err
		}
		if selected(r.schema, r.name) {
			list = append(list, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list tables: %w", err)
	}
	var tables []*runtime.Table
	typeOIDs := map[uint32]bool{}
	for _, r := range list {
		if !r.canSelect {
			return nil, nil, fmt.Errorf("%w: %s.%s. Fix: GRANT SELECT ON %s TO %s", ErrNoSelectAccess, r.schema, r.name, r.qualified, quoteIdent(s.cfg.User))
		}
		t, err := s.describe(ctx, conn, r, typeOIDs)
		if err != nil {
			return nil, nil, fmt.Errorf("describe %s.%s: %w", r.schema, r.name, err)
		}
		s.oids[t] = r.oid
		s.qualified[t] = r.qualified
		if r.persistence == "u" {
			s.unlogged[t] = true
			t.Warnings = append(t.Warnings, fmt.Sprintf("table %s.%s is UNLOGGED: it is loaded, but PostgreSQL does not log its changes, so CDC cannot replicate them. Fix: ALTER TABLE ... SET LOGGED", r.schema, r.name))
		}
		tables = append(tables, t)
	}
	types, err := userTypes(ctx, conn, typeOIDs)
	if err != nil {
		return nil, nil, fmt.Errorf("describe user types: %w", err)
	}
	return tables, types, nil
}

// describe reads one table's columns, keys, constraints, indexes, sequences
// and partitions, and notes the user types its columns use.
func (s *Source) describe(ctx context.Context, conn *pgx.Conn, r tableRow, typeOIDs map[uint32]bool) (*runtime.Table, error) {
	t := &runtime.Table{
		SourceSchema: r.schema, SourceName: r.name, Schema: r.schema, Name: r.name,
		Pages: r.pages, EstimatedRows: r.rows, BinaryCopy: true,
	}
	rows, err := conn.Query(ctx, `
SELECT a.attname,
       format_type(a.atttypid, a.atttypmod) ||
         CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
              THEN ' COLLATE ' || (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                                   FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                                   WHERE co.oid = a.attcollation)
              ELSE '' END,
       a.atttypid, t.typelem, a.attnotnull, a.attgenerated::text, a.attidentity::text,
       coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, r.oid)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var c runtime.Column
		var elem uint32
		var generated, identity, def string
		if err := rows.Scan(&c.SourceName, &c.Type, &c.TypeOID, &elem, &c.NotNull, &generated, &identity, &def); err != nil {
			return nil, err
		}
		c.Name = c.SourceName
		if generated == "s" {
			c.Generated = def
		} else {
			c.Default = def
		}
		if identity != "" {
			c.Identity = identity[0]
		}
		for _, oid := range []uint32{c.TypeOID, elem} {
			if oid >= firstNormalOID {
				typeOIDs[oid] = true
				t.BinaryCopy = false
			}
			if regTypes[oid] {
				// Their binary form is an OID, which differs per database.
				t.BinaryCopy = false
			}
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := s.keys(ctx, conn, r, t); err != nil {
		return nil, err
	}
	if err := constraints(ctx, conn, r.oid, t); err != nil {
		return nil, err
	}
	if err := indexes(ctx, conn, r, t); err != nil {
		return nil, err
	}
	if err := sequences(ctx, conn, r.oid, t); err != nil {
		return nil, err
	}
	if r.kind == "p" {
		if err := conn.QueryRow(ctx, `SELECT pg_get_partkeydef($1)`, r.oid).Scan(&t.PartitionBy); err != nil {
			return nil, err
		}
		if t.Partitions, err = partitions(ctx, conn, r.oid); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// keys finds the columns that identify rows and how the source logs them.
func (s *Source) keys(ctx context.Context, conn *pgx.Conn, r tableRow, t *runtime.Table) error {
	var pk, ri []int16
	// A deferrable primary key cannot identify rows for logical decoding,
	// nor serve ON CONFLICT: it counts as no key.
	err := conn.QueryRow(ctx, `
SELECT (SELECT conkey FROM pg_constraint WHERE conrelid = $1 AND contype = 'p' AND NOT condeferrable),
       (SELECT i.indkey::int2[] FROM pg_index i WHERE i.indrelid = $1 AND i.indisreplident)`, r.oid).Scan(&pk, &ri)
	if err != nil {
		return err
	}
	attnums, err := columnAttnums(ctx, conn, r.oid)
	if err != nil {
		return err
	}
	toIdx := func(keys []int16) []int {
		var out []int
		for _, k := range keys {
			out = append(out, attnums[k])
		}
		return out
	}
	t.HasPrimaryKey = len(pk) > 0
	switch r.replident {
	case "d":
		t.Key = toIdx(pk)
		t.Identity = runtime.IdentityKey
		if len(pk) == 0 {
			t.Identity = runtime.IdentityNone
		}
	case "i":
		t.Key = toIdx(ri)
		t.Identity = runtime.IdentityKey
	case "f":
		t.Key = toIdx(pk)
		t.Identity = runtime.IdentityFull
	default:
		t.Key = toIdx(pk)
		t.Identity = runtime.IdentityNone
	}
	if t.Identity == runtime.IdentityNone {
		if s.cfg.SetReplicaIdentityFull {
			t.Identity = runtime.IdentityFull
			s.needFull = append(s.needFull, t)
		} else {
			t.Warnings = append(t.Warnings, fmt.Sprintf("table %s.%s has no primary key and no replica identity: only its inserts are replicated, updates and deletes are not. Fix: add a primary key, run ALTER TABLE ... REPLICA IDENTITY FULL, or set SluiceSettings.SetReplicaIdentityFull", r.schema, r.name))
		}
	}
	return nil
}

// columnAttnums maps attribute numbers to indexes in the column list.
func columnAttnums(ctx context.Context, conn *pgx.Conn, oid uint32) (map[int16]int, error) {
	rows, err := conn.Query(ctx, `SELECT attnum FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, oid)
	if err != nil {
		return nil, err
	}
	nums, err := pgx.CollectRows(rows, pgx.RowTo[int16])
	if err != nil {
		return nil, err
	}
	m := make(map[int16]int, len(nums))
	for i, n := range nums {
		m[n] = i
	}
	return m, nil
}

func constraints(ctx context.Context, conn *pgx.Conn, oid uint32, t *runtime.Table) error {
	rows, err := conn.Query(ctx, `
SELECT conname, pg_get_constraintdef(oid), contype::text FROM pg_constraint
WHERE conrelid = $1 AND contype IN ('p', 'u', 'c', 'x') AND conislocal
ORDER BY contype, conname`, oid)
	if err != nil {
		return err
	}
	for rows.Next() {
		var c runtime.Constraint
		var typ string
		if err := rows.Scan(&c.Name, &c.Def, &typ); err != nil {
			return err
		}
		if typ == "p" {
			// The primary key comes first: it is built before the others.
			t.Constraints = append([]runtime.Constraint{c}, t.Constraints...)
			continue
		}
		t.Constraints = append(t.Constraints, c)
	}
	return rows.Err()
}

func indexes(ctx context.Context, conn *pgx.Conn, r tableRow, t *runtime.Table) error {
	rows, err := conn.Query(ctx, `
SELECT ic.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = $1
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
ORDER BY ic.relname`, r.oid)
	if err != nil {
		return err
	}
	for rows.Next() {
		var ix runtime.Index
		if err := rows.Scan(&ix.Name, &ix.Def); err != nil {
			return err
		}
		def := strings.Replace(ix.Def, " ON ONLY "+r.qualified+" ", " ON "+runtime.TablePlaceholder+" ", 1)
		def = strings.Replace(def, " ON "+r.qualified+" ", " ON "+runtime.TablePlaceholder+" ", 1)
		if !strings.Contains(def, runtime.TablePlaceholder) {
			t.Warnings = append(t.Warnings, fmt.Sprintf("index %s is not created: its definition could not be read (%s)", ix.Name, ix.Def))
			continue
		}
		ix.Def = def
		t.Indexes = append(t.Indexes, ix)
	}
	return rows.Err()
}

// sequences finds the sequences the table's columns own (serial and identity
// columns, and OWNED BY sequences) and those its defaults use without owning
// them (a sequence shared by tables), and detaches serial defaults from the
// source's sequence names: the target points them at its own sequence.
func sequences(ctx context.Context, conn *pgx.Conn, oid uint32, t *runtime.Table) error {
	rows, err := conn.Query(ctx, `
WITH owned AS (
  SELECT d.objid AS seq, a.attname, d.deptype = 'i' AS identity, true AS owned
  FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
  WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
    AND d.refobjid = $1 AND d.deptype IN ('a', 'i')
), used AS (
  SELECT DISTINCT d.refobjid AS seq, ''::name AS attname, false AS identity, false AS owned
  FROM pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
  WHERE ad.adrelid = $1 AND d.refclassid = 'pg_class'::regclass
    AND d.refobjid NOT IN (SELECT seq FROM owned)
)
SELECT n.nspname, s.relname, o.attname, o.identity, o.owned, s.oid::regclass::text,
       format_type(q.seqtypid, NULL),
       format('INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s %s',
              q.seqincrement, q.seqmin, q.seqmax, q.seqstart, q.seqcache,
              CASE WHEN q.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END)
FROM (SELECT * FROM owned UNION ALL SELECT * FROM used) o
JOIN pg_class s ON s.oid = o.seq AND s.relkind = 'S'
JOIN pg_namespace n ON n.oid = s.relnamespace
JOIN pg_sequence q ON q.seqrelid = s.oid
ORDER BY s.relname`, oid)
	if err != nil {
		return err
	}
	for rows.Next() {
		var q runtime.Sequence
		var regclass string
		if err := rows.Scan(&q.SourceSchema, &q.SourceName, &q.Column, &q.Identity, &q.Owned, &regclass, &q.As, &q.Def); err != nil {
			return err
		}
		if !q.Owned {
			// Defaults name it as the source does; it keeps its name.
			q.Schema, q.Name = q.SourceSchema, q.SourceName
			t.Sequences = append(t.Sequences, q)
			continue
		}
		q.Schema, q.Name = q.SourceSchema, q.SourceName
		for i := range t.Columns {
			c := &t.Columns[i]
			if c.SourceName == q.Column && c.Default == "nextval("+pgtext.Literal(regclass)+"::regclass)" {
				c.Default = ""
			}
		}
		t.Sequences = append(t.Sequences, q)
	}
	return rows.Err()
}

// partitions lists a partitioned table's partitions, recursively.
func partitions(ctx context.Context, conn *pgx.Conn, parent uint32) ([]runtime.Partition, error) {
	rows, err := conn.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, pg_get_expr(c.relpartbound, c.oid),
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) ELSE '' END
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = $1 ORDER BY c.relname`, parent)
	if err != nil {
		return nil, err
	}
	type child struct {
		oid uint32
		p   runtime.Partition
	}
	var kids []child
	for rows.Next() {
		var k child
		if err := rows.Scan(&k.oid, &k.p.SourceSchema, &k.p.SourceName, &k.p.Bound, &k.p.PartitionBy); err != nil {
			return nil, err
		}
		k.p.Schema, k.p.Name = k.p.SourceSchema, k.p.SourceName
		kids = append(kids, k)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]runtime.Partition, 0, len(kids))
	for _, k := range kids {
		if k.p.PartitionBy != "" {
			sub, err := partitions(ctx, conn, k.oid)
			if err != nil {
				return nil, err
			}
			k.p.Partitions = sub
		}
		out = append(out, k.p)
	}
	return out, nil
}

// userTypes returns CREATE statements for the user types in oids and the
// user types they depend on, dependencies first.
func userTypes(ctx context.Context, conn *pgx.Conn, oids map[uint32]bool) ([]runtime.UserType, error) {
	var out []runtime.UserType
	done := map[uint32]bool{}
	var visit func(oid uint32) error
	visit = func(oid uint32) error {
		if oid < firstNormalOID || done[oid] {
			return nil
		}
		done[oid] = true
		var schema, name, typtype, base string
		var elem, baseOID, relid uint32
		err := conn.QueryRow(ctx, `
SELECT n.nspname, t.typname, t.typtype::text, t.typelem, t.typbasetype, t.typrelid,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) ELSE '' END
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1`, oid).
			Scan(&schema, &name, &typtype, &elem, &baseOID, &relid, &base)
		if err != nil {
			return err
		}
		if elem != 0 && typtype != "c" {
			return visit(elem) // an array type: its element is what needs creating
		}
		if typtype == "m" {
			// A multirange comes with its range type.
			var rng uint32
			if err := conn.QueryRow(ctx, `SELECT rngtypid FROM pg_range WHERE rngmultitypid = $1`, oid).Scan(&rng); err != nil {
				return err
			}
			return visit(rng)
		}
		qname := quoteIdent(schema) + "." + quoteIdent(name)
		var def string
		switch typtype {
		case "e":
			var labels []string
			if err := conn.QueryRow(ctx, `SELECT array_agg(quote_literal(enumlabel) ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = $1`, oid).Scan(&labels); err != nil {
				return err
			}
			def = fmt.Sprintf("CREATE TYPE %s AS ENUM (%s)", qname, strings.Join(labels, ", "))
		case "d":
			if err := visit(baseOID); err != nil {
				return err
			}
			var extra string
			err := conn.QueryRow(ctx, `
SELECT concat_ws(' ',
         CASE WHEN t.typdefault IS NOT NULL THEN 'DEFAULT ' || t.typdefault END,
         CASE WHEN t.typnotnull THEN 'NOT NULL' END,
         (SELECT string_agg('CONSTRAINT ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid), ' ' ORDER BY conname)
          FROM pg_constraint WHERE contypid = t.oid))
FROM pg_type t WHERE t.oid = $1`, oid).Scan(&extra)
			if err != nil {
				return err
			}
			def = strings.TrimSpace(fmt.Sprintf("CREATE DOMAIN %s AS %s %s", qname, base, extra))
		case "c":
			rows, err := conn.Query(ctx, `
SELECT quote_ident(attname) || ' ' || format_type(atttypid, atttypmod), atttypid
FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, relid)
			if err != nil {
				return err
			}
			var fields []string
			var deps []uint32
			for rows.Next() {
				var f string
				var dep uint32
				if err := rows.Scan(&f, &dep); err != nil {
					return err
				}
				fields = append(fields, f)
				deps = append(deps, dep)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			for _, d := range deps {
				if err := visit(d); err != nil {
					return err
				}
			}
			def = fmt.Sprintf("CREATE TYPE %s AS (%s)", qname, strings.Join(fields, ", "))
		case "r":
			var sub string
			if err := conn.QueryRow(ctx, `SELECT format_type(rngsubtype, NULL), rngsubtype FROM pg_range WHERE rngtypid = $1`, oid).Scan(&sub, &baseOID); err != nil {
				return err
			}
			if err := visit(baseOID); err != nil {
				return err
			}
			def = fmt.Sprintf("CREATE TYPE %s AS RANGE (SUBTYPE = %s)", qname, sub)
		default:
			return fmt.Errorf("type %s (kind %q) cannot be recreated on the target: only enums, domains, composite types and ranges can", qname, typtype)
		}
		out = append(out, runtime.UserType{Schema: schema, Name: name, Def: def})
		return nil
	}
	for oid := range oids {
		if err := visit(oid); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// quoteIdent is pgtext.Ident, by the name this package's statements use.
var quoteIdent = pgtext.Ident

// regTypes are the reg* types (and their arrays), whose values are OIDs of
// catalog objects: their text form is portable, their binary form is not.
var regTypes = map[uint32]bool{
	24: true, 2202: true, 2203: true, 2204: true, 2205: true, 2206: true, 3734: true, 3769: true, 4089: true, 4096: true, 4191: true,
	1008: true, 2207: true, 2208: true, 2209: true, 2210: true, 2211: true, 3735: true, 3770: true, 4090: true, 4097: true, 4192: true,
}
