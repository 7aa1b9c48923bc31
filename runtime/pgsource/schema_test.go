package pgsource_test

import (
	"context"
	"testing"

	"github.com/sluicedb/sluice/runtime/pgsource"
	"github.com/sluicedb/sluice/test/testenv"
)

// TestTablesCountPages: a plain table's size in pages is what the full load
// cuts it into chunks by (pg_partition_tree lists nothing for a plain table,
// which once made every table one chunk); a partitioned one counts its
// leaves.
func TestTablesCountPages(t *testing.T) {
	db := testenv.NewPGDatabase(t, "pages")
	testenv.Exec(t, db, `CREATE TABLE plain (id int PRIMARY KEY, v text)`)
	testenv.Exec(t, db, `INSERT INTO plain SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g`)
	testenv.Exec(t, db, `CREATE TABLE parted (id int, v text) PARTITION BY RANGE (id)`)
	testenv.Exec(t, db, `CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10000)`)
	testenv.Exec(t, db, `CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (10000) TO (20001)`)
	testenv.Exec(t, db, `INSERT INTO parted SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g`)
	var want int64
	if err := testenv.Connect(t, db).QueryRow(context.Background(), `SELECT pg_relation_size('plain') / 8192`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	src := pgsource.New(pgsource.Config{ConnString: testenv.PGURL(db), Slot: "sluice_pages"})
	tables, _, err := src.Tables(context.Background(), func(schema, _ string) bool { return schema == "public" })
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Pages < want*9/10 {
			t.Errorf("%s counts %d pages, want about %d", tb.SourceName, tb.Pages, want)
		}
		if tb.SourceName == "plain" {
			chunks, err := src.Chunks(context.Background(), tb, 64)
			if err != nil {
				t.Fatal(err)
			}
			if n := int((tb.Pages + 63) / 64); len(chunks) != n || n < 2 {
				t.Errorf("plain is copied in %d chunks of 64 pages, want %d", len(chunks), n)
			}
		}
	}
}
