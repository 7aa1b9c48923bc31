package pgtarget

import (
	"context"

	"github.com/sluicedb/sluice/runtime"
)

// netChanges is a placeholder until batch apply lands.
type netChanges struct{}

func newNetChanges() *netChanges { return &netChanges{} }

func (n *netChanges) hold(c *runtime.Change) bool { return false }

func (n *netChanges) reset() {}

func (a *applier) flushNet(ctx context.Context, t *runtime.Table, tables []*runtime.Table) error {
	return nil
}
