// Package store keeps Sluice's control state in Redis: endpoints, replication
// configs, each config's replication (status, provisioning, statistics,
// checkpoint) and tags. The API writes configs and requests state changes;
// the launcher and the replicator's monitor write progress. Every change of
// a record is one optimistic transaction, so concurrent requests cannot
// both win.
package store
