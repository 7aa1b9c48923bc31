package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// pgbenchTables are the tables pgbench -i makes.
var pgbenchTables = []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"}

// validationBench measures Sluice's validation of a pgbench copy against
// the data comparison of pgcopydb, finding one changed row, and the source's
// throughput while a replication validates under pgbench.
func validationBench(ctx context.Context, work string) error {
	dst := "sluice_bench_val"
	if err := recreate(ctx, dst); err != nil {
		return err
	}
	tf, err := writeTask(work, "bench-val-load", "full-load", dst, fmt.Sprintf(`{"FullLoadSettings":{"MaxFullLoadSubTasks":%d}}`, *jobs))
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, *bin, "-task", tf).CombinedOutput(); err != nil {
		return fmt.Errorf("sluice full load for the validation: %v\n%s", err, out)
	}
	var sluiceTimes, peerTimes []time.Duration
	var rss int64
	for i := 0; i < *rounds; i++ {
		v, err := sluiceValidate(ctx, work, dst, i)
		if err != nil {
			return err
		}
		if v.failed != 0 || v.notValidated != "" {
			return fmt.Errorf("validation of an exact copy: %d failed rows, %s", v.failed, v.notValidated)
		}
		sluiceTimes = append(sluiceTimes, v.took)
		rss = max(rss, v.peakRSS)
		d, same, err := compareData(ctx, dst)
		if err != nil {
			return err
		}
		if !same {
			return fmt.Errorf("pgcopydb's data comparison says the exact copy differs")
		}
		peerTimes = append(peerTimes, d)
	}
	sl, pc := median(sluiceTimes), median(peerTimes)
	fmt.Printf("validation of pgbench -s %d, PostgreSQL -> PostgreSQL (%d threads / table jobs each)\n", *scale, *jobs)
	fmt.Printf("  sluice ValidationOnly            median %6.2f s  runs %s  (peak RSS %d MiB)\n", sl.Seconds(), fmtDurations(sluiceTimes), rss>>20)
	fmt.Printf("  pgcopydb compare data's query    median %6.2f s  runs %s\n", pc.Seconds(), fmtDurations(peerTimes))
	fmt.Printf("  ratio sluice / pgcopydb          %.2f  (target <= 1.0; pgcopydb says only whether each table is equal)\n", sl.Seconds()/pc.Seconds())

	// One changed row among 2 million.
	aid := *scale*100000/2 + 3
	if err := execSQL(ctx, dst, fmt.Sprintf(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = %d`, aid)); err != nil {
		return err
	}
	v, err := sluiceValidate(ctx, work, dst, *rounds)
	if err != nil {
		return err
	}
	keys, err := failedKeys(ctx, dst, fmt.Sprintf("bench-val-%d", *rounds))
	if err != nil {
		return err
	}
	d, same, err := compareData(ctx, dst)
	if err != nil {
		return err
	}
	fmt.Printf("  one row changed on the target (aid %d): sluice %.2f s, found %d failed row(s) %v; pgcopydb %.2f s, tables equal: %v\n",
		aid, v.took.Seconds(), v.failed, keys, d.Seconds(), same)
	return validateUnderLoad(ctx, work)
}

type validation struct {
	took         time.Duration
	failed       int64
	notValidated string
	peakRSS      int64
}

// sluiceValidate runs a ValidationOnly replication of the source against
// dst and reads what its statistics say at the end.
func sluiceValidate(ctx context.Context, work, dst string, round int) (validation, error) {
	id := fmt.Sprintf("bench-val-%d", round)
	tf, err := writeTask(work, id, "full-load", dst, fmt.Sprintf(`{"ValidationSettings":{"EnableValidation":true,"ValidationOnly":true,"ThreadCount":%d}}`, *jobs))
	if err != nil {
		return validation{}, err
	}
	stats := filepath.Join(work, id+"-stats.json")
	cmd := exec.CommandContext(ctx, *bin, "-task", tf, "-stats-file", stats)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return validation{}, err
	}
	var peak int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			peak = max(peak, peakRSS(cmd.Process.Pid))
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	err = cmd.Wait()
	took := time.Since(start)
	close(done)
	wg.Wait()
	if err != nil {
		return validation{}, fmt.Errorf("sluice validation: %v\n%s", err, out)
	}
	v, err := readValidation(stats)
	v.took, v.peakRSS = took, peak
	return v, err
}

// readValidation sums the validation of every table in a stats file.
func readValidation(path string) (validation, error) {
	var s struct {
		Tables []struct {
			SchemaName, TableName string
			Validation            struct {
				State  string
				Failed int64
			}
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return validation{}, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return validation{}, err
	}
	var v validation
	for _, t := range s.Tables {
		v.failed += t.Validation.Failed
		if t.Validation.State != "Validated" {
			v.notValidated += fmt.Sprintf("%s %s; ", t.TableName, t.Validation.State)
		}
	}
	return v, nil
}

func failedKeys(ctx context.Context, db, task string) ([]string, error) {
	c, err := pgx.Connect(ctx, url(db))
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT "TABLE_NAME" || ' ' || "KEY" || ' ' || "FAILURE_TYPE" FROM public.awsdms_validation_failures_v1 WHERE "TASK_NAME" = $1`, task)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// compareData runs, for every table, the query pgcopydb compare data
// sends to both databases (src/bin/pgcopydb/schema.c: a row count and a
// hash of the sum of every row's hashtext), source and target at once,
// -jobs tables at a time, as pgcopydb does. Debian 12's pgcopydb (0.10)
// predates its compare command, so the benchmark sends the query itself.
func compareData(ctx context.Context, dst string) (time.Duration, bool, error) {
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(*jobs)
	var mu sync.Mutex
	same := true
	for _, table := range pgbenchTables {
		g.Go(func() error {
			var sums [2]string
			h, hctx := errgroup.WithContext(gctx)
			for i, db := range []string{src, dst} {
				h.Go(func() error {
					c, err := pgx.Connect(hctx, url(db))
					if err != nil {
						return err
					}
					defer c.Close(hctx)
					var cols []string
					rows, err := c.Query(hctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, table)
					if err != nil {
						return err
					}
					if cols, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
						return err
					}
					var n int64
					q := "select count(1), encode(sha256(format('%s-%s', sum(hashtext((" + strings.Join(cols, ", ") + ")::text)::bigint), count(1))::bytea), 'hex') from only " + table
					if err := c.QueryRow(hctx, q).Scan(&n, &sums[i]); err != nil {
						return fmt.Errorf("%s on %s: %w", table, db, err)
					}
					sums[i] = strconv.FormatInt(n, 10) + " " + sums[i]
					return nil
				})
			}
			if err := h.Wait(); err != nil {
				return err
			}
			mu.Lock()
			same = same && sums[0] == sums[1]
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), same, err
}

// validateUnderLoad runs a full-load-and-cdc replication with
// EnableValidation while pgbench writes to the source, and compares the
// source's throughput with its throughput alone; the validation must end
// Validated with no failure once the writes stop.
func validateUnderLoad(ctx context.Context, work string) error {
	alone, err := workload(ctx)
	if err != nil {
		return err
	}
	dst := "sluice_bench_cdc"
	if err := recreate(ctx, dst); err != nil {
		return err
	}
	stats := filepath.Join(work, "valcdc-stats.json")
	tf, err := writeTask(work, "bench-valcdc", "full-load-and-cdc", dst, fmt.Sprintf(`{"ChangeProcessingTuning":{"MemoryLimitTotal":%d},"ValidationSettings":{"EnableValidation":true,"ThreadCount":2}}`, memLimitMB))
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(work, "valcdc.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(*bin, "-task", tf, "-stats-file", stats)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		dropSlot(ctx, src)
		_ = execSQL(ctx, src, `DROP PUBLICATION IF EXISTS sluice_bench_valcdc, sluice_bench_valcdc_ins`)
	}()
	if err := waitPhase(stats, "cdc", 5*time.Minute); err != nil {
		return err
	}
	tps, err := workload(ctx)
	if err != nil {
		return err
	}
	rss := peakRSS(cmd.Process.Pid)
	began := time.Now()
	var v validation
	for {
		if v, err = readValidation(stats); err == nil && v.notValidated == "" {
			break
		}
		if time.Since(began) > 5*time.Minute {
			return fmt.Errorf("validation under load did not settle: %s", v.notValidated)
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Printf("  under pgbench (%d clients, %d s) with EnableValidation: source %.0f tps = %.2f x alone (%.0f tps); every table Validated %.1f s after the writes stopped, %d failed rows; replicator peak RSS %d MiB (MemoryLimitTotal %d MiB)\n",
		*clients, *seconds, tps, tps/alone, alone, time.Since(began).Seconds(), v.failed, rss>>20, memLimitMB)
	return nil
}
