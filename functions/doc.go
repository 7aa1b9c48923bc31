// Package functions will hold Sluice's stateless handlers (the DMS API, the
// metadata analysis, the scheduled sweeps), each a plain Go function of a
// context and an event, run by Lambda, by `sluice serve` and by tests. It is
// empty until the control-plane issue lands; the layout is fixed by the
// design card.
package functions
