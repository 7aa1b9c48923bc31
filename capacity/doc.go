// Package capacity sizes replications: the planner turns what is known of a
// source (rows, bytes, LOB columns, change rate) and the config's
// ComputeConfig into a Plan (units, memory limit, change buffer, full-load
// parallelism) with its reason in words, and the Scaler turns a running
// replicator's utilization into a new size. It does no I/O; the control loop
// that acts on its plans is capacity/control.
package capacity
