// Package ecs launches replicators as Amazon ECS tasks (RunTask, StopTask,
// DescribeTasks): what `sluice serve` uses with SLUICE_LAUNCHER=ecs, when one
// machine is not enough. It is one of the launchers capacity/control drives.
//
// A task document holds passwords, and anyone allowed ecs:DescribeTasks reads
// a task's overrides, so the document never enters an ECS call: Launch seals
// it with a fresh key and leaves it in Redis (store.PutHandoff), and the task
// gets only the key; the replicator takes the document once. Statistics and
// the replicator's last error come back through Redis as well, since the
// server cannot read a task's output. Each replication's task ARN is kept in
// Redis too, so a server started later still finds, watches and stops the
// tasks an earlier one launched.
//
// The package's name is the SDK's too: a file that needs both imports the
// SDK's as awsecs.
package ecs
