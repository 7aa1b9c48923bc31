package test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedb/sluice/runtime"
)

// TestFullLoadResume: a replicator killed with SIGKILL during the full
// load, after some tables are copied and while a large one is not, keeps
// the copied tables when it starts again and loads only the rest, from a
// new snapshot; under a writer changing every table all along, the target
// ends equal to the source, with no duplicate and no missing row.
func TestFullLoadResume(t *testing.T) {
	policyEngines(t, func(t *testing.T, engine string) {
		p := newPolicyDBs(t, engine, "flresume")
		const small = 5
		for i := range small {
			p.exec(t, p.src, fmt.Sprintf("CREATE TABLE s%d (id int PRIMARY KEY, n int NOT NULL)", i))
			if engine == "postgres" {
				p.exec(t, p.src, fmt.Sprintf("INSERT INTO s%d SELECT g, g FROM generate_series(1, 2000) g", i))
			} else {
				p.exec(t, p.src, fmt.Sprintf("INSERT INTO s%d SELECT seq, seq FROM seq_1_to_2000", i))
			}
		}
		if engine == "postgres" {
			p.exec(t, p.src, "CREATE TABLE big (id int PRIMARY KEY, n int NOT NULL, pad text)")
			p.exec(t, p.src, "INSERT INTO big SELECT g, g, repeat('x', 200) FROM generate_series(1, 600000) g")
		} else {
			p.exec(t, p.src, "CREATE TABLE big (id int PRIMARY KEY, n int NOT NULL, pad varchar(255))")
			p.exec(t, p.src, "INSERT INTO big SELECT seq, seq, REPEAT('x', 200) FROM seq_1_to_600000")
		}
		names := []string{"big"}
		for i := range small {
			names = append(names, fmt.Sprintf("s%d", i))
		}
		dir := t.TempDir()
		// One chunk a table, two at once: the small tables are done while
		// the big one is still copying.
		tf := writeTask(t, dir, p.task("flresume", "full-load-and-cdc", `"FullLoadSettings":{"MaxFullLoadSubTasks":2},"SluiceSettings":{"ChunkPages":1000000}`))
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		write := p.session(t)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tb := names[i%len(names)]
				write(fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE id = %d", tb, i%2000+1))
				if i%7 == 0 {
					write(fmt.Sprintf("DELETE FROM %s WHERE id = %d", tb, 2000-i%1000))
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		proc := startReplicator(t, tf, dir)
		// Kill it once small tables are recorded as copied on the target
		// and the big one is not.
		q := `SELECT count(*) FROM public.awsdms_txn_state, jsonb_object_keys(reload->'Tables') k WHERE task_name = 'flresume' AND reload->>'Token' = 'sluice:full-load' AND k <> 'public.big'`
		if engine != "postgres" {
			q = "SELECT JSON_LENGTH(reload, '$.Tables') - JSON_CONTAINS_PATH(reload, 'one', '$.Tables.\"" + p.src + ".big\"') FROM " + p.ctl + ".awsdms_txn_state WHERE task_name = 'flresume' AND JSON_VALUE(reload, '$.Token') = 'sluice:full-load'"
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if time.Now().After(deadline) {
				t.Fatal("no small table was recorded as copied within 2 minutes")
			}
			if got := p.rows(t, p.dst, q); len(got) == 1 && got[0] != "0" && got[0] != "<no table>" {
				break
			}
			if s, ok := statsOr(proc); ok {
				for _, ts := range s.Tables {
					if ts.TableName == "big" && ts.TableState == runtime.StateCompleted {
						t.Fatal("the big table was copied before the kill: make it bigger")
					}
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		proc.kill(t)
		// Which tables the record holds, and what each target table is
		// now: one kept is the same table after the resume, not a copy
		// made again.
		rq := `SELECT string_agg(k, ',') FROM public.awsdms_txn_state, jsonb_object_keys(reload->'Tables') k WHERE task_name = 'flresume' AND reload->>'Token' = 'sluice:full-load'`
		if engine != "postgres" {
			rq = "SELECT JSON_KEYS(reload, '$.Tables') FROM " + p.ctl + ".awsdms_txn_state WHERE task_name = 'flresume'"
		}
		recorded := p.rows(t, p.dst, rq)
		before := p.tableIDs(t, names)
		proc = startReplicator(t, tf, dir)
		time.Sleep(2 * time.Second)
		close(stop)
		wg.Wait()
		cols := "n"
		for _, tb := range names {
			waitRows(t, proc, tb, 2*time.Minute, func() []string { return p.rowsOf(t, p.src, tb, cols) }, func() []string { return p.rowsOf(t, p.dst, tb, cols) })
		}
		after := p.tableIDs(t, names)
		kept := 0
		for _, tb := range names {
			rec := strings.Contains(strings.Join(recorded, ","), "."+tb)
			switch {
			case rec && before[tb] != after[tb]:
				t.Errorf("%s was recorded as copied before the kill but was loaded again", tb)
			case rec:
				kept++
			case tb == "big" && before[tb] == after[tb]:
				t.Errorf("big, not copied before the kill, was not loaded again")
			}
		}
		if kept == 0 {
			t.Errorf("no table was kept; recorded before the kill: %q", recorded)
		}
		log, _ := os.ReadFile(proc.log.Name())
		if !strings.Contains(string(log), "keeping the tables it copied") {
			t.Fatalf("the second replicator did not keep the copied tables; its log:\n%s", log)
		}
	})
}

// statsOr reads the replicator's statistics file, false before its first.
func statsOr(p *process) (runtime.Snapshot, bool) {
	var s runtime.Snapshot
	b, err := os.ReadFile(p.stats)
	if err != nil || len(b) == 0 {
		return s, false
	}
	return s, json.Unmarshal(b, &s) == nil
}

// rowsOf returns a digest of db's rows of table: their count and the sum
// of a hash of each id|col, which tells row sets apart.
func (p *policyDBs) rowsOf(t *testing.T, db, table, col string) []string {
	t.Helper()
	if p.engine == "postgres" {
		return p.rows(t, db, "SELECT count(*) || '|' || coalesce(sum(hashtext(id || '|' || "+col+")), 0) FROM "+p.tableRef(db, table))
	}
	return p.rows(t, db, "SELECT CONCAT(count(*), '|', coalesce(SUM(CRC32(CONCAT(id, '|', "+col+"))), 0)) FROM "+p.tableRef(db, table))
}

// tableIDs returns what identifies each target table: its OID, or
// InnoDB's table id; a table dropped and made again, or truncated, gets a
// new one.
func (p *policyDBs) tableIDs(t *testing.T, tables []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tb := range tables {
		q := "SELECT coalesce(to_regclass('public." + tb + "')::oid::text, 'none')"
		if p.engine != "postgres" {
			q = "SELECT CAST(TABLE_ID AS CHAR) FROM information_schema.INNODB_SYS_TABLES WHERE NAME = '" + p.dst + "/" + tb + "'"
		}
		out[tb] = strings.Join(p.rows(t, p.dst, q), ",")
	}
	return out
}
