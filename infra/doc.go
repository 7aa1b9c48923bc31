// Package infra will hold the adapters to the outside: the Redis store, the
// AWS clients (ECS, Secrets Manager, Scheduler) and telemetry setup. It is
// empty until the control-plane issue lands; the layout is fixed by the
// design card.
package infra
