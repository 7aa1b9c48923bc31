// Package capacity turns what is known about a replication into a capacity
// plan (units, memory limit, full-load parallelism) and declares the
// Launcher that starts replicators of that size. The planner is fixed-size
// until the capacity issue makes it follow the workload.
package capacity
