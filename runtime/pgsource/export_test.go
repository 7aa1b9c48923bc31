package pgsource

// HeartbeatEvery runs the heartbeat with an interval a test can wait for.
var HeartbeatEvery = (*Source).heartbeat
