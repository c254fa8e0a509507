package config

import "time"

// DefaultSyncWait is how long the worker that syncs a proxy asks sessionsvc
// to hold a sync call open until the revocation log moves (sync_wait: the
// feed's long-poll, wait=). 0 polls every sync_interval as before.
const DefaultSyncWait = 10 * time.Second

// MaxSyncWait is sessionsvc's bound on a long-poll.
const MaxSyncWait = 25 * time.Second

func (c *Config) validateSyncWait() error {
	if c.SyncWait > MaxSyncWait {
		return fieldErr("sync_wait", "must be at most %s, got %s", MaxSyncWait, c.SyncWait)
	}
	if c.SyncWait > 0 && c.MaxStaleness > 0 && c.SyncWait > c.MaxStaleness/3 {
		// An answer (even an empty one) is a successful sync: the wait
		// must leave room for it well within max_staleness.
		c.Warnings = append(c.Warnings, "sync_wait "+c.SyncWait.String()+" lowered to a third of max_staleness ("+(c.MaxStaleness/3).String()+")")
		c.SyncWait = c.MaxStaleness / 3
	}
	return nil
}
