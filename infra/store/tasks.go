package store

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// kTask maps a replication ARN to the ARN of the ECS task that runs its
// replicator, so that a later server finds (and can stop) a task an earlier
// one launched.
const kTask = "ecstask"

// PutReplicatorTask records that task runs replication id's replicator.
func (s *Store) PutReplicatorTask(ctx context.Context, id, task string) error {
	return s.rdb.Set(ctx, s.Key(kTask, id), task, 0).Err()
}

// ReplicatorTask returns the task recorded for replication id, "" if none.
func (s *Store) ReplicatorTask(ctx context.Context, id string) (string, error) {
	task, err := s.rdb.Get(ctx, s.Key(kTask, id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return task, err
}

// forgetTask deletes the record if it is still of that task. KEYS: record.
// ARGV: task.
var forgetTask = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// ForgetReplicatorTask deletes replication id's record of task, leaving a
// record of a newer task alone.
func (s *Store) ForgetReplicatorTask(ctx context.Context, id, task string) error {
	return forgetTask.Run(ctx, s.rdb, []string{s.Key(kTask, id)}, task).Err()
}
