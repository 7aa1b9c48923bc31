// Package capacity will turn source metadata and a ComputeConfig into a
// capacity plan (units, memory limit, full-load parallelism) and launch
// replicators of that size. It is empty until the capacity issue lands; the
// layout is fixed by the design card.
package capacity
