package control

import (
	"context"

	"github.com/sluicedb/sluice/capacity/lifecycle"
	"github.com/sluicedb/sluice/infra/store"
)

// Adopt takes over the replications a previous server left in flight, at
// server start: a running replication gets its replicator again (it
// resumes from the target's position) unless one still runs (an ECS task),
// a start that was under way starts over (under work), and a stop that was
// under way is recorded as done (its replicator stopped with the server).
func (s *Server) Adopt(ctx, work context.Context) error {
	all, err := s.Store.Replications(ctx)
	if err != nil {
		return err
	}
	for _, rep := range all {
		if err := s.adopt(ctx, work, rep); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) adopt(ctx, work context.Context, rep *store.ReplicationRecord) error {
	arn, name := rep.ReplicationConfigArn, rep.ReplicationConfigIdentifier
	switch {
	case lifecycle.Live(rep.Status):
		running, err := s.Launcher.Running(ctx, arn)
		if err != nil {
			return err
		}
		if running {
			// An ECS task outlives the server: keep it, and watch it.
			s.Log.Info("adopting a running replicator", "replication", name)
			return nil
		}
		s.Log.Info("adopting a running replication", "replication", name)
		return s.relaunch(ctx, arn)
	case lifecycle.Starting(rep.Status):
		s.Log.Info("starting over a start the previous server did not finish", "replication", name)
		_, err := s.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
			to, err := lifecycle.Next(rep.Status, lifecycle.Restart)
			rep.Status = to
			return err
		})
		if err != nil {
			return err
		}
		s.begin(work, arn)
	case rep.Status == store.StatusStopping:
		running, err := s.Launcher.Running(ctx, arn)
		if err != nil {
			return err
		}
		if running {
			// Its replicator outlived the server (an ECS task): stop it;
			// its end is reported when it comes.
			return s.Launcher.Stop(ctx, arn)
		}
		_, err = s.Store.UpdateReplication(ctx, arn, func(rep *store.ReplicationRecord) error {
			if rep.Status != store.StatusStopping {
				return nil
			}
			return s.end(rep, lifecycle.StopNormal, "")
		})
		return err
	}
	return nil
}
