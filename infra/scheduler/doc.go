// Package scheduler keeps the user schedules of `sluice schedule` in AWS
// EventBridge Scheduler. A Schedule (a name, an at/rate/cron expression and a
// JSON payload) enters Create and leaves as an EventBridge schedule in one
// schedule group, whose target is the Sluice schedule function; when it fires,
// the function receives the payload and starts or stops a replication. List
// and Delete read and remove them again. In local mode the same schedules
// live in Redis instead (infra/store).
package scheduler
