package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/sluicedb/sluice/infra/store"
)

const watchUsage = `usage: sluice watch [flags] <replication-config-identifier or ARN>

Shows one replication live: status, full-load progress per table, CDC lag
and throughput, read from the API (GET /replications/{id}) every interval.
Credentials and region come from the AWS environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, profiles), or from SLUICE_ACCESS_KEY_ID,
SLUICE_SECRET_ACCESS_KEY and SLUICE_REGION when those are not set.

flags:`

// watchView is what GET /replications/{id} answers.
type watchView struct {
	Replication                store.Replication
	CDCLatencyTarget           float64
	ReplicationTableStatistics []store.TableStatistics
}

// rows is every row the replication has written: loaded and changed.
func (v *watchView) rows() int64 {
	var n int64
	for _, t := range v.ReplicationTableStatistics {
		n += t.FullLoadRows + t.Inserts + t.Updates + t.Deletes
	}
	return n
}

// watch runs `sluice watch`. It returns nil when the -until condition was
// met (or the user interrupted), and an error when the replication failed
// or the server could not be read.
func watch(ctx context.Context, args []string, stdout io.Writer, tty bool) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), watchUsage); fs.PrintDefaults() }
	endpoint := fs.String("endpoint", "http://"+contract().Addr, "the Sluice API `URL`")
	interval := fs.Duration("interval", time.Second, "time between two reads")
	until := fs.String("until", "", "exit when the replication is `running`, `loaded` (running with the full load at 100%) or `stopped` (stopped or failed); empty: watch until interrupted")
	timeout := fs.Duration("timeout", 0, "give up after this long (0: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("give exactly one replication config identifier or ARN")
	}
	switch *until {
	case "", "running", "loaded", "stopped":
	default:
		return fmt.Errorf("-until %q is not a condition: use running, loaded or stopped", *until)
	}
	if *interval < 100*time.Millisecond {
		return fmt.Errorf("-interval %v is too short: use at least 100ms", *interval)
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	c, err := newWatchClient(ctx, *endpoint, fs.Arg(0))
	if err != nil {
		return err
	}
	var prev *watchView
	var prevAt time.Time
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		v, err := c.get(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return watchEnded(ctx, *until)
			}
			return err
		}
		now := time.Now()
		var rate float64
		// Counters start over on a reload: no rate across one.
		if prev != nil && v.rows() >= prev.rows() {
			rate = float64(v.rows()-prev.rows()) / now.Sub(prevAt).Seconds()
		}
		if tty {
			fmt.Fprint(stdout, "\033[H\033[2J"+render(v, rate, now))
		} else {
			fmt.Fprintln(stdout, line(v, rate, now))
		}
		prev, prevAt = v, now
		r := v.Replication
		if r.Status == store.StatusFailed {
			if !tty {
				fmt.Fprint(stdout, render(v, rate, now))
			}
			return fmt.Errorf("replication %s failed: %s", r.ReplicationConfigIdentifier, strings.Join(r.FailureMessages, "; "))
		}
		if reached(v, *until) {
			if !tty {
				fmt.Fprint(stdout, render(v, rate, now))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return watchEnded(ctx, *until)
		case <-tick.C:
		}
	}
}

func watchEnded(ctx context.Context, until string) error {
	if until != "" && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("the replication was not %s before -timeout", until)
	}
	return nil // interrupted: the user has seen what they wanted
}

func reached(v *watchView, until string) bool {
	r := v.Replication
	switch until {
	case "running":
		return r.Status == store.StatusRunning
	case "loaded":
		return r.Status == store.StatusRunning && r.ReplicationStats != nil && r.ReplicationStats.FullLoadProgressPercent == 100
	case "stopped":
		return r.Status == store.StatusStopped
	}
	return false
}

// watchClient reads one replication through the REST alias, signed like
// any DMS request.
type watchClient struct {
	url    string
	creds  aws.CredentialsProvider
	region string
	http   *http.Client
}

func newWatchClient(ctx context.Context, endpoint, id string) (*watchClient, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-endpoint %q is not a URL like http://127.0.0.1:8377", endpoint)
	}
	var opts []func(*config.LoadOptions) error
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("SLUICE_ACCESS_KEY_ID") != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			os.Getenv("SLUICE_ACCESS_KEY_ID"), os.Getenv("SLUICE_SECRET_ACCESS_KEY"), "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS credentials: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = contract().Region
	}
	return &watchClient{
		url:   strings.TrimSuffix(endpoint, "/") + "/replications/" + url.PathEscape(id),
		creds: cfg.Credentials, region: cfg.Region,
		http: &http.Client{Timeout: 10 * time.Second},
	}, nil
}

var emptySHA256 = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

func (c *watchClient) get(ctx context.Context) (*watchView, error) {
	if c.creds == nil {
		return nil, errors.New("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or SLUICE_ACCESS_KEY_ID and SLUICE_SECRET_ACCESS_KEY) to the server's key pair")
	}
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptySHA256, "dms", c.region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the replication from %s: %w (is sluice serve running there?)", c.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var f struct{ Type, Message string }
		_ = json.Unmarshal(body, &struct {
			Type    *string `json:"__type"`
			Message *string `json:"message"`
		}{&f.Type, &f.Message})
		if f.Type == "" {
			return nil, fmt.Errorf("%s answered %s", c.url, resp.Status)
		}
		return nil, fmt.Errorf("%s: %s", f.Type, f.Message)
	}
	var v watchView
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("%s answered something that is not a replication: %w", c.url, err)
	}
	return &v, nil
}

// line is one line of the view, for output that is not a terminal.
func line(v *watchView, rate float64, now time.Time) string {
	r := v.Replication
	s := fmt.Sprintf("%s %s %s", now.Format("15:04:05"), r.ReplicationConfigIdentifier, r.Status)
	if st := r.ReplicationStats; st != nil && r.ReplicationType != "cdc" {
		s += fmt.Sprintf("  full load %d%% (%d/%d tables)", st.FullLoadProgressPercent, st.TablesLoaded, len(v.ReplicationTableStatistics))
	}
	if r.Status == store.StatusRunning {
		s += fmt.Sprintf("  lag %s  %s rows/s", lag(v.CDCLatencyTarget), thousands(int64(rate+0.5)))
	}
	return s
}

// render is the whole view: a header, then one line per table.
func render(v *watchView, rate float64, now time.Time) string {
	r := v.Replication
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s  (%s)", r.ReplicationConfigIdentifier, strings.ToUpper(string(r.Status)), r.ReplicationType)
	if st := r.ReplicationStats; st != nil && st.StartDate != nil && r.Status != store.StatusStopped && r.Status != store.StatusFailed {
		fmt.Fprintf(&b, "  up %s", now.Sub(st.StartDate.Time).Truncate(time.Second))
	}
	if p := r.ProvisionData; p != nil && p.ProvisionedCapacityUnits > 0 {
		fmt.Fprintf(&b, "  %d capacity unit(s)", p.ProvisionedCapacityUnits)
	}
	b.WriteString("\n")
	if st := r.ReplicationStats; st != nil && r.ReplicationType != "cdc" {
		fmt.Fprintf(&b, "full load   %s %3d%%  %d loaded, %d loading, %d queued, %d errored\n",
			bar(float64(st.FullLoadProgressPercent)/100, 20), st.FullLoadProgressPercent,
			st.TablesLoaded, st.TablesLoading, st.TablesQueued, st.TablesErrored)
	}
	if r.Status == store.StatusRunning {
		fmt.Fprintf(&b, "lag         %s\nthroughput  %s rows/s\n", lag(v.CDCLatencyTarget), thousands(int64(rate+0.5)))
	}
	if st := r.ReplicationStats; st != nil && st.SourceRetainedWalBytes > 0 {
		fmt.Fprintf(&b, "source WAL  %s held by the slot\n", bytesText(st.SourceRetainedWalBytes))
	}
	if r.StopReason != "" {
		fmt.Fprintf(&b, "stopped     %s\n", r.StopReason)
	}
	for _, m := range r.FailureMessages {
		fmt.Fprintf(&b, "failure     %s\n", m)
	}
	if r.RecoveryCheckpoint != "" {
		fmt.Fprintf(&b, "checkpoint  %s\n", r.RecoveryCheckpoint)
	}
	if len(v.ReplicationTableStatistics) == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "\n%-32s %-16s %-27s %12s %10s %10s %10s\n", "TABLE", "STATE", "FULL LOAD", "LOADED", "INSERTS", "UPDATES", "DELETES")
	for _, t := range v.ReplicationTableStatistics {
		fmt.Fprintf(&b, "%-32s %-16s %-27s %12s %10s %10s %10s\n", clipName(t.SchemaName+"."+t.TableName, 32), t.TableState,
			tableProgress(t), thousands(t.FullLoadRows), thousands(t.Inserts), thousands(t.Updates), thousands(t.Deletes))
		if t.ValidationState != "" && t.ValidationState != "Not enabled" {
			fmt.Fprintf(&b, "  validation %s", t.ValidationState)
			if t.ValidationFailedRecords+t.ValidationPendingRecords+t.ValidationSuspendedRecords > 0 {
				fmt.Fprintf(&b, ": %s failed, %s pending, %s suspended", thousands(t.ValidationFailedRecords),
					thousands(t.ValidationPendingRecords), thousands(t.ValidationSuspendedRecords))
			}
			b.WriteString("\n")
		}
		if t.ValidationStateDetails != "" {
			fmt.Fprintf(&b, "  ! %s\n", t.ValidationStateDetails)
		}
	}
	return b.String()
}

// tableProgress is a table's full-load bar: loaded rows against the
// source's estimate, which can be off, so a loading table shows at most 99%.
func tableProgress(t store.TableStatistics) string {
	var f float64
	switch {
	case t.TableState == "Table completed":
		f = 1
	case t.EstimatedRows > 0:
		f = min(float64(t.FullLoadRows)/float64(t.EstimatedRows), 0.99)
	}
	return fmt.Sprintf("%s %3d%%", bar(f, 20), int(f*100))
}

func bar(f float64, width int) string {
	n := int(f*float64(width) + 0.5)
	n = max(0, min(n, width))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func lag(seconds float64) string {
	if seconds < 10 {
		return fmt.Sprintf("%.1f s", seconds)
	}
	return (time.Duration(seconds) * time.Second).String()
}

// thousands formats n with thousands separators, for counts people read.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

func clipName(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// bytesText is n bytes in the largest unit that keeps it above 1.
func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}
