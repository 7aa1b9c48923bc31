package pgtarget

import (
	"testing"

	"github.com/sluicedb/sluice/runtime"
)

func txt(s string) runtime.Value { return runtime.Value{Kind: runtime.Text, Data: []byte(s)} }

var unchanged = runtime.Value{Kind: runtime.Unchanged}

func TestNetChangesHold(t *testing.T) {
	tb := &runtime.Table{
		Columns: []runtime.Column{{Name: "id"}, {Name: "big"}, {Name: "n"}},
		Key:     []int{0}, HasPrimaryKey: true, Identity: runtime.IdentityKey,
	}
	keyless := &runtime.Table{Columns: []runtime.Column{{Name: "a"}}, Identity: runtime.IdentityFull}
	type want struct {
		key     string
		deleted bool
		row     []string // "" = not checked; "~" = unchanged
	}
	cases := []struct {
		name    string
		changes []*runtime.Change
		held    []bool
		want    []want
	}{
		{
			// Insert then updates collapse into one row with the last values.
			name: "insert-update-update",
			changes: []*runtime.Change{
				{Op: runtime.OpInsert, Table: tb, New: runtime.Row{txt("1"), txt("B"), txt("a")}},
				{Op: runtime.OpUpdate, Table: tb, New: runtime.Row{txt("1"), txt("B"), txt("b")}},
				{Op: runtime.OpUpdate, Table: tb, New: runtime.Row{txt("1"), unchanged, txt("c")}},
			},
			held: []bool{true, true, true},
			want: []want{{key: "1", row: []string{"1", "B", "c"}}},
		},
		{
			// An unchanged TOAST value with no held row must read the target's: not held.
			name:    "toast-without-row",
			changes: []*runtime.Change{{Op: runtime.OpUpdate, Table: tb, New: runtime.Row{txt("2"), unchanged, txt("x")}}},
			held:    []bool{false},
		},
		{
			// A key change deletes the old key and writes the new one.
			name: "key-change",
			changes: []*runtime.Change{
				{Op: runtime.OpUpdate, Table: tb, Old: runtime.Row{txt("3"), {}, {}}, New: runtime.Row{txt("4"), txt("B"), txt("x")}},
			},
			held: []bool{true},
			want: []want{{key: "3", deleted: true}, {key: "4", row: []string{"4", "B", "x"}}},
		},
		{
			// Insert then delete leaves a delete: the target may have had the row before a restart.
			name: "insert-delete",
			changes: []*runtime.Change{
				{Op: runtime.OpInsert, Table: tb, New: runtime.Row{txt("5"), txt("B"), txt("x")}},
				{Op: runtime.OpDelete, Table: tb, Old: runtime.Row{txt("5"), {}, {}}},
			},
			held: []bool{true, true},
			want: []want{{key: "5", deleted: true}},
		},
		{
			// Tables without a key and truncates are never held.
			name: "keyless-and-truncate",
			changes: []*runtime.Change{
				{Op: runtime.OpInsert, Table: keyless, New: runtime.Row{txt("a")}},
				{Op: runtime.OpTruncate, Tables: []*runtime.Table{tb}},
			},
			held: []bool{false, false},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := newNetChanges(1 << 20)
			for i, ch := range c.changes {
				if got := n.hold(ch); got != c.held[i] {
					t.Fatalf("hold(change %d) = %v, want %v", i, got, c.held[i])
				}
			}
			tn := n.tables[tb]
			if len(c.want) == 0 {
				if tn != nil && len(tn.keys) > 0 {
					t.Fatalf("held %d keys, want none", len(tn.keys))
				}
				return
			}
			if len(tn.keys) != len(c.want) {
				t.Fatalf("held %d keys, want %d", len(tn.keys), len(c.want))
			}
			for i, w := range c.want {
				e := tn.entries[tn.keys[i]]
				if e.deleted != w.deleted {
					t.Errorf("key %s deleted = %v, want %v", w.key, e.deleted, w.deleted)
				}
				if string(e.row[0].Data) != w.key {
					t.Errorf("entry %d has key %q, want %q", i, e.row[0].Data, w.key)
				}
				for j, v := range w.row {
					if string(e.row[j].Data) != v {
						t.Errorf("key %s column %d = %q, want %q", w.key, j, e.row[j].Data, v)
					}
				}
			}
		})
	}
}

func TestRowKeyDoesNotCollide(t *testing.T) {
	tb := &runtime.Table{Columns: []runtime.Column{{Name: "a"}, {Name: "b"}}, Key: []int{0, 1}}
	// "ab"+"c" and "a"+"bc" must differ, and NULL must differ from "".
	k1 := rowKey(tb, runtime.Row{txt("ab"), txt("c")})
	k2 := rowKey(tb, runtime.Row{txt("a"), txt("bc")})
	k3 := rowKey(tb, runtime.Row{{Kind: runtime.Null}, txt("c")})
	k4 := rowKey(tb, runtime.Row{txt(""), txt("c")})
	if k1 == k2 || k3 == k4 {
		t.Errorf("keys collide: %q %q %q %q", k1, k2, k3, k4)
	}
}
