package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedb/sluice/infra/store"
	"github.com/sluicedb/sluice/infra/store/storetest"
)

// short is the TTL of the leases (and documents) a test waits to see
// lapse; long is one no test outlives.
const (
	short = 200 * time.Millisecond
	long  = time.Hour
)

// holder returns who holds arn's lease and with which token.
func holder(t *testing.T, st *store.Store, arn string) (string, int64) {
	t.Helper()
	h, tok, err := st.LeaseHolder(context.Background(), arn)
	if err != nil {
		t.Fatal(err)
	}
	return h, tok
}

// take takes arn's lease for who and fails the test unless it comes with
// token want.
func take(t *testing.T, st *store.Store, arn, who string, ttl time.Duration, want int64) {
	t.Helper()
	tok, err := st.AcquireLease(context.Background(), arn, who, ttl)
	if err != nil || tok != want {
		t.Fatalf("%s takes the lease of %s: token %d, %v; want token %d", who, arn, tok, err, want)
	}
}

// lapse waits until arn's lease has expired.
func lapse(t *testing.T, st *store.Store, arn string) {
	t.Helper()
	eventually(t, "lapsed", func() bool { h, _ := holder(t, st, arn); return h == "" })
}

// lapsed runs one lease sweep now.
func lapsed(t *testing.T, st *store.Store, now time.Time) []string {
	t.Helper()
	out, err := st.LapsedLeases(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLeaseHeld: a held lease is its holder's alone: another cannot take,
// renew or release it, the holder can take it again (same token) and
// renew it, and a release frees it without leaving it to the sweep.
func TestLeaseHeld(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	const arn = "arn:cfg:r"
	take(t, st, arn, "a", long, 1)

	// Another holder is refused, and told who holds it.
	if tok, err := st.AcquireLease(ctx, arn, "b", long); !errors.Is(err, store.ErrLeaseHeld) || !strings.Contains(err.Error(), "(a)") || tok != 0 {
		t.Fatalf("b takes a's lease: token %d, %v; want ErrLeaseHeld naming a", tok, err)
	}
	// The holder taking it again (a replicator retrying) keeps its token.
	take(t, st, arn, "a", long, 1)
	// Renewals: the holder with its token; not another holder, not another token.
	if err := st.RenewLease(ctx, arn, "a", 1, long); err != nil {
		t.Fatalf("a renews: %v", err)
	}
	for _, c := range []struct {
		who string
		tok int64
	}{
		{"b", 1}, // another holder, though it knows the token
		{"a", 2}, // the holder with a token it was never given
		{"a", 0}, // the holder that never took it (token 0)
	} {
		if err := st.RenewLease(ctx, arn, c.who, c.tok, long); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("%s renews with token %d: %v, want ErrLeaseLost", c.who, c.tok, err)
		}
	}
	// Releases by another holder or with another token leave it alone.
	for _, c := range []struct {
		who string
		tok int64
	}{
		{"b", 1}, // another holder
		{"a", 2}, // the holder with a token it was never given
	} {
		if err := st.ReleaseLease(ctx, arn, c.who, c.tok); err != nil {
			t.Fatal(err)
		}
	}
	if h, tok := holder(t, st, arn); h != "a" || tok != 1 {
		t.Fatalf("after foreign renewals and releases the lease is %q's with token %d, want a's with 1", h, tok)
	}
	// The holder's release frees it, and no sweep relaunches a replication handed back.
	if err := st.ReleaseLease(ctx, arn, "a", 1); err != nil {
		t.Fatal(err)
	}
	if h, tok := holder(t, st, arn); h != "" || tok != 0 {
		t.Fatalf("after the release the lease is %q's with token %d, want nobody's", h, tok)
	}
	if got := lapsed(t, st, time.Now().Add(2*long)); len(got) != 0 {
		t.Fatalf("a released lease was swept as lapsed: %v", got)
	}
	take(t, st, arn, "b", long, 2)
}

// TestLeaseRenewal: a renewal sets the lease's expiry and its deadline for
// the sweep to ttl from now; a failed renewal extends nothing.
func TestLeaseRenewal(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)

	// A lease renewed for long outlives its first TTL (half a second, so
	// that a stalled machine still renews it in time).
	const first = 500 * time.Millisecond
	taken := time.Now()
	take(t, st, "arn:cfg:renewed", "a", first, 1)
	if err := st.RenewLease(ctx, "arn:cfg:renewed", "a", 1, long); err != nil {
		t.Fatal(err)
	}
	// A short lease that another holder tries to renew for long lapses anyway.
	take(t, st, "arn:cfg:foreign", "a", short, 1)
	if err := st.RenewLease(ctx, "arn:cfg:foreign", "b", 1, long); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("b renews a's lease: %v, want ErrLeaseLost", err)
	}
	// A long lease renewed for short lapses: its deadline moved too.
	take(t, st, "arn:cfg:shortened", "a", long, 1)
	if err := st.RenewLease(ctx, "arn:cfg:shortened", "a", 1, short); err != nil {
		t.Fatal(err)
	}
	lapse(t, st, "arn:cfg:foreign")
	lapse(t, st, "arn:cfg:shortened")
	time.Sleep(time.Until(taken.Add(first + 200*time.Millisecond)))
	if h, tok := holder(t, st, "arn:cfg:renewed"); h != "a" || tok != 1 {
		t.Fatalf("the renewed lease is %q's with token %d past its first TTL, want a's with 1", h, tok)
	}
	got := lapsed(t, st, time.Now())
	slices.Sort(got)
	if want := []string{"arn:cfg:foreign", "arn:cfg:shortened"}; !slices.Equal(got, want) {
		t.Fatalf("lapsed leases %v, want %v", got, want)
	}
	// Renewing a lapsed lease fails, even with nobody else holding it.
	if err := st.RenewLease(ctx, "arn:cfg:shortened", "a", 1, long); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("a renews its lapsed lease: %v, want ErrLeaseLost", err)
	}
}

// TestLapsedLeaseClaimedOnce: a lease that lapsed is found by the sweep
// once, however many sweepers run at once; a live lease is never claimed,
// even by a sweep whose clock says its deadline passed.
func TestLapsedLeaseClaimedOnce(t *testing.T) {
	st := storetest.Fresh(t, redisDB)
	take(t, st, "arn:cfg:lives", "b", long, 1)
	if got := lapsed(t, st, time.Now().Add(2*long)); len(got) != 0 {
		t.Fatalf("a sweep claimed a live lease: %v", got)
	}
	take(t, st, "arn:cfg:dies", "a", short, 1)
	lapse(t, st, "arn:cfg:dies")
	var mu sync.Mutex
	var claims []string
	atOnce(10, func(int) {
		got, err := st.LapsedLeases(context.Background(), time.Now())
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		claims = append(claims, got...)
		mu.Unlock()
	})
	if !slices.Equal(claims, []string{"arn:cfg:dies"}) {
		t.Fatalf("ten sweepers claimed %v, want arn:cfg:dies once", claims)
	}
	if got := lapsed(t, st, time.Now().Add(2*long)); len(got) != 0 {
		t.Fatalf("a later sweep claimed %v again", got)
	}
}

// TestLeaseSteal: once a lease lapsed another holder takes it with the
// next token; the old holder cannot renew it, take it back or release it,
// and the sweep leaves the new lease alone.
func TestLeaseSteal(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	const arn = "arn:cfg:r"
	take(t, st, arn, "a", short, 1)
	lapse(t, st, arn)
	take(t, st, arn, "b", long, 2)
	if err := st.RenewLease(ctx, arn, "a", 1, long); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("the old holder renews: %v, want ErrLeaseLost", err)
	}
	if _, err := st.AcquireLease(ctx, arn, "a", long); !errors.Is(err, store.ErrLeaseHeld) || !strings.Contains(err.Error(), "(b)") {
		t.Fatalf("the old holder takes it back: %v, want ErrLeaseHeld naming b", err)
	}
	if err := st.ReleaseLease(ctx, arn, "a", 1); err != nil {
		t.Fatal(err)
	}
	if h, tok := holder(t, st, arn); h != "b" || tok != 2 {
		t.Fatalf("the stolen lease is %q's with token %d, want b's with 2", h, tok)
	}
	// The lapse was never swept; b's take replaced the deadline the sweep would have seen.
	if got := lapsed(t, st, time.Now()); len(got) != 0 {
		t.Fatalf("the sweep claimed the new lease: %v", got)
	}
	// The old holder taking it after b's lapses gets a new token, not its old one.
	if err := st.RenewLease(ctx, arn, "b", 2, short); err != nil {
		t.Fatal(err)
	}
	lapse(t, st, arn)
	take(t, st, arn, "a", long, 3)
}

// TestFencingTokens: every take of a replication's lease hands out a token
// above every earlier one: one after another, and among ten replicators
// racing for it, where the tokens won are 1…n without a gap or a repeat.
// Each replication counts on its own.
func TestFencingTokens(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)

	// One after another, each by a new holder: token i.
	const seq = "arn:cfg:seq"
	for i := int64(1); i <= 100; i++ {
		who := fmt.Sprintf("r%d", i)
		take(t, st, seq, who, long, i)
		if err := st.ReleaseLease(ctx, seq, who, i); err != nil {
			t.Fatal(err)
		}
	}
	// Another replication starts at 1.
	take(t, st, "arn:cfg:other", "x", long, 1)

	// Ten replicators, 20 attempts each, racing for one lease.
	const raced = "arn:cfg:raced"
	var mu sync.Mutex
	var won []int64
	var held atomic.Int64
	atOnce(10, func(i int) {
		who := fmt.Sprintf("r%d", i)
		var last int64
		for range 20 {
			tok, err := st.AcquireLease(ctx, raced, who, long)
			if errors.Is(err, store.ErrLeaseHeld) {
				held.Add(1)
				continue
			}
			if err != nil {
				t.Error(err)
				return
			}
			if tok <= last {
				t.Errorf("%s got token %d after %d", who, tok, last)
			}
			last = tok
			mu.Lock()
			won = append(won, tok)
			mu.Unlock()
			if err := st.ReleaseLease(ctx, raced, who, tok); err != nil {
				t.Error(err)
			}
		}
	})
	slices.Sort(won)
	for i, tok := range won {
		if tok != int64(i+1) {
			t.Fatalf("tokens won %v: want 1…%d, each once", won, len(won))
		}
	}
	if n := int64(len(won)) + held.Load(); n != 200 {
		t.Fatalf("%d takes won and %d refused, want 200 in all", len(won), held.Load())
	}
	t.Logf("%d of 200 racing takes won", len(won))
	// The next take, after the race, is above all of them.
	take(t, st, raced, "late", long, int64(len(won)+1))
}

// TestExpectLease: a launch gives the replicator until within to take the
// lease. Before then the sweep leaves the replication alone; after it,
// with no lease taken, the sweep claims it once; a lease taken in time
// replaces the expectation with its own deadline.
func TestExpectLease(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	const within = time.Second

	// Nobody takes the lease: due at within, claimed once.
	before := time.Now()
	if err := st.ExpectLease(ctx, "arn:cfg:never", within); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if got := lapsed(t, st, before.Add(within-time.Millisecond)); len(got) != 0 {
		t.Fatalf("the sweep claimed %v before the launch grace ended", got)
	}
	if got := lapsed(t, st, after.Add(within)); !slices.Equal(got, []string{"arn:cfg:never"}) {
		t.Fatalf("the sweep after the grace claimed %v, want arn:cfg:never", got)
	}
	if got := lapsed(t, st, after.Add(2*within)); len(got) != 0 {
		t.Fatalf("a second sweep claimed %v again", got)
	}

	// The replicator takes the lease in time (an expectation is not a
	// lease): the sweep leaves it alone past the grace while it lives.
	if err := st.ExpectLease(ctx, "arn:cfg:taken", within); err != nil {
		t.Fatal(err)
	}
	take(t, st, "arn:cfg:taken", "a", long, 1)
	if got := lapsed(t, st, time.Now().Add(2*within)); len(got) != 0 {
		t.Fatalf("the sweep claimed a lease taken in time: %v", got)
	}

	// A long grace, a short lease: the sweep finds the lapse at the lease's
	// deadline, not at the end of the grace.
	if err := st.ExpectLease(ctx, "arn:cfg:died", long); err != nil {
		t.Fatal(err)
	}
	take(t, st, "arn:cfg:died", "a", short, 1)
	lapse(t, st, "arn:cfg:died")
	if got := lapsed(t, st, time.Now()); !slices.Equal(got, []string{"arn:cfg:died"}) {
		t.Fatalf("the sweep after the lease lapsed claimed %v, want arn:cfg:died", got)
	}
}

// TestHandoff: a sealed task document is taken once, by one of ten
// replicators asking at once, and expires if nobody takes it.
func TestHandoff(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	if err := st.PutHandoff(ctx, "arn:cfg:r", "sealed-doc", long); err != nil {
		t.Fatal(err)
	}
	var got, missing atomic.Int64
	atOnce(10, func(int) {
		doc, err := st.TakeHandoff(ctx, "arn:cfg:r")
		switch {
		case err == nil && doc == "sealed-doc":
			got.Add(1)
		case errors.Is(err, store.ErrNotFound) && strings.Contains(err.Error(), "arn:cfg:r"):
			missing.Add(1)
		default:
			t.Errorf("take: %q, %v", doc, err)
		}
	})
	if got.Load() != 1 || missing.Load() != 9 {
		t.Fatalf("%d took the document and %d found none, want 1 and 9", got.Load(), missing.Load())
	}
	// Left for short and not taken: gone.
	if err := st.PutHandoff(ctx, "arn:cfg:late", "sealed-doc", short); err != nil {
		t.Fatal(err)
	}
	time.Sleep(short + 100*time.Millisecond)
	if doc, err := st.TakeHandoff(ctx, "arn:cfg:late"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("take after the TTL: %q, %v; want ErrNotFound", doc, err)
	}
}

// TestReplicatorReports: the statistics a replicator stores are read until
// they expire; its exit message is read once.
func TestReplicatorReports(t *testing.T) {
	ctx := context.Background()
	st := storetest.Fresh(t, redisDB)
	if doc, err := st.ReplicatorStats(ctx, "arn:cfg:r"); err != nil || doc != nil {
		t.Fatalf("statistics before any: %q, %v; want none", doc, err)
	}
	put := time.Now()
	if err := st.PutReplicatorStats(ctx, "arn:cfg:r", []byte(`{"lag":1}`), short); err != nil {
		t.Fatal(err)
	}
	// Read twice: a read does not consume them (unless the machine stalled past the TTL).
	for range 2 {
		if doc, err := st.ReplicatorStats(ctx, "arn:cfg:r"); err != nil || (string(doc) != `{"lag":1}` && time.Since(put) < short) {
			t.Fatalf("statistics: %q, %v; want the document stored", doc, err)
		}
	}
	eventually(t, "expired", func() bool { doc, _ := st.ReplicatorStats(ctx, "arn:cfg:r"); return doc == nil })

	if msg, err := st.ReplicatorExit(ctx, "arn:cfg:r"); err != nil || msg != "" {
		t.Fatalf("exit message before any: %q, %v; want none", msg, err)
	}
	if err := st.PutReplicatorExit(ctx, "arn:cfg:r", "source gone"); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"source gone", ""} {
		if msg, err := st.ReplicatorExit(ctx, "arn:cfg:r"); err != nil || msg != want {
			t.Fatalf("read %d of the exit message: %q, %v; want %q", i+1, msg, err, want)
		}
	}
}
