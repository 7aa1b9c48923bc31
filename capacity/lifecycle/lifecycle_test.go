package lifecycle

import (
	"errors"
	"testing"

	"github.com/sluicedb/sluice/infra/store"
)

func TestNext(t *testing.T) {
	for _, c := range []struct {
		why  string
		from store.Status
		ev   Event
		want store.Status // "" means not allowed
	}{
		{"a new config starts", store.StatusCreated, Start, store.StatusInitializing},
		{"a stopped replication starts again", store.StatusStopped, Start, store.StatusInitializing},
		{"a failed replication starts again", store.StatusFailed, Start, store.StatusInitializing},
		{"a running replication cannot start twice", store.StatusRunning, Start, ""},
		{"nor one that is starting", store.StatusTestingConnection, Start, ""},
		{"nor one that is stopping", store.StatusStopping, Start, ""},

		{"the chain's first step", store.StatusInitializing, Step, store.StatusPreparingMetadata},
		{"the connections are tested after the metadata resources", store.StatusPreparingMetadata, Step, store.StatusTestingConnection},
		{"metadata after the connections", store.StatusTestingConnection, Step, store.StatusFetchingMetadata},
		{"capacity after metadata", store.StatusFetchingMetadata, Step, store.StatusCalculatingCap},
		{"provisioning after the plan", store.StatusCalculatingCap, Step, store.StatusProvisioningCap},
		{"the replicator starts once provisioned", store.StatusProvisioningCap, Step, store.StatusReplicationStarting},
		{"the chain ends at replication_starting: the first report moves it", store.StatusReplicationStarting, Step, ""},
		{"a stop between steps ends the chain", store.StatusStopping, Step, ""},

		{"the first statistics mean it runs", store.StatusReplicationStarting, Report, store.StatusRunning},
		{"a report after a stop does not revive it", store.StatusStopping, Report, ""},

		{"a start under way can be stopped", store.StatusFetchingMetadata, Stop, store.StatusStopping},
		{"a running replication can be stopped", store.StatusRunning, Stop, store.StatusStopping},
		{"a stopped one cannot", store.StatusStopped, Stop, ""},
		{"stopping twice is refused, as DMS does", store.StatusStopping, Stop, ""},
		{"a never started one cannot", store.StatusCreated, Stop, ""},

		{"a stop ends stopped", store.StatusStopping, End, store.StatusStopped},
		{"a full load ends stopped", store.StatusRunning, End, store.StatusStopped},
		{"a created replication has no run to end", store.StatusCreated, End, ""},
		{"a failed replication does not end again", store.StatusFailed, End, ""},
		{"a start can fail", store.StatusTestingConnection, Fail, store.StatusFailed},
		{"a run can fail", store.StatusRunning, Fail, store.StatusFailed},
		{"a stopping run can fail", store.StatusStopping, Fail, store.StatusFailed},
		{"a stopped one cannot fail", store.StatusStopped, Fail, ""},

		{"a start under way is started over by a new server", store.StatusCalculatingCap, Restart, store.StatusInitializing},
		{"a launched replicator is not started over: it is adopted", store.StatusReplicationStarting, Restart, ""},

		{"tables reload while running, the status stays", store.StatusRunning, Reload, store.StatusRunning},
		{"not while starting", store.StatusReplicationStarting, Reload, ""},
		{"a stopped replication's config can be modified", store.StatusStopped, Modify, store.StatusStopped},
		{"not a running one's", store.StatusRunning, Modify, ""},
		{"a never started config can be deleted", store.StatusCreated, Delete, store.StatusCreated},
		{"not one that is stopping", store.StatusStopping, Delete, ""},
		{"an unknown event is refused", store.StatusRunning, Event("explode"), ""},
	} {
		got, err := Next(c.from, c.ev)
		if c.want == "" {
			if !errors.Is(err, ErrNotAllowed) || got != c.from {
				t.Errorf("%s: Next(%s, %s) = %s, %v; want not allowed", c.why, c.from, c.ev, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: Next(%s, %s) = %s, %v; want %s", c.why, c.from, c.ev, got, err, c.want)
		}
	}
}

// TestEveryStatusHasAWayOut walks the table: from every status some event
// leads on, and every status but created can be reached, so no replication
// is ever stuck.
func TestEveryStatusHasAWayOut(t *testing.T) {
	all := []store.Status{
		store.StatusCreated, store.StatusInitializing, store.StatusPreparingMetadata, store.StatusTestingConnection,
		store.StatusFetchingMetadata, store.StatusCalculatingCap, store.StatusProvisioningCap, store.StatusReplicationStarting,
		store.StatusRunning, store.StatusStopping, store.StatusStopped, store.StatusFailed,
	}
	events := []Event{Start, Step, Restart, Report, Stop, End, Fail}
	reached := map[store.Status]bool{}
	for _, from := range all {
		out := false
		for _, ev := range events {
			if to, err := Next(from, ev); err == nil && to != from {
				out = true
				reached[to] = true
			}
		}
		if !out {
			t.Errorf("no event leads out of %s", from)
		}
	}
	for _, s := range all[1:] {
		if !reached[s] {
			t.Errorf("no event leads to %s", s)
		}
	}
}

func TestPredicates(t *testing.T) {
	if !Starting(store.StatusInitializing) || !Starting(store.StatusReplicationStarting) || Starting(store.StatusRunning) {
		t.Error("Starting: initializing through replication_starting, not running")
	}
	if !Live(store.StatusRunning) || !Live(store.StatusReplicationStarting) || Live(store.StatusStopping) || Live(store.StatusProvisioningCap) {
		t.Error("Live: replication_starting and running only")
	}
	if !Settled(store.StatusCreated) || !Settled(store.StatusFailed) || Settled(store.StatusStopping) {
		t.Error("Settled: created, stopped, failed")
	}
}
