// Package control is Sluice's control loop: the long-running side of the
// capacity planner, which "computes units and launches long-running
// replicator containers". The API (functions/api) records what a user asked
// for and hands starts, stops and reloads to a Server; the Server walks the
// start chain (task document, connection tests, pre-migration check,
// analysis, sizing, launch), turns the launcher's reports into statuses and
// statistics, resizes running replicators (autoscaling), and sweeps leases,
// deprovision timers and queued requests. Every status change goes through
// capacity/lifecycle's table, as a compare-and-set on the record in Redis,
// so a stop that arrives at any point wins cleanly.
//
// Files are named after what they do: server.go (Run: the supervised
// loops), start.go (the start chain), taskdoc.go (the replicator's task and
// credentials), analyze.go (metadata and sizing), launch.go (launches and
// relaunches), report.go (reports → statuses), autoscale.go, sweep.go
// (deprovision timers, leases, queued requests), adopt.go (a new server
// takes over), runs.go (what the loop remembers between reports).
package control
