package store

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// walCheckpointer copies SQLite's write-ahead log back into the database
// file from a connection of its own, so that no write transaction does it
// in its commit.
//
// By default SQLite checkpoints in the commit that takes the log past 1,000
// pages: under a stream of activity that was now and then a revocation's
// commit, which then copied (and fsynced) megabytes before it returned.
// The writer runs with wal_autocheckpoint(0) instead, and this checkpoints
// PASSIVE every checkpointEvery: a passive checkpoint never waits for or
// blocks the writer or the readers (it copies what it can), so neither the
// write gate nor a revocation ever waits for one.
type walCheckpointer struct {
	db      *sql.DB
	stop    chan struct{}
	done    sync.WaitGroup
	stopped sync.Once
}

const checkpointEvery = 200 * time.Millisecond

// startCheckpointer opens the checkpointer's connection on dsn and starts it.
func (s *sqlStore) startCheckpointer(dsn string) error {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	c := &walCheckpointer{db: db, stop: make(chan struct{})}
	c.done.Add(1)
	go c.run(s)
	s.ckpt = c
	return nil
}

func (c *walCheckpointer) run(s *sqlStore) {
	defer c.done.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var busy, logPages, copied int
		err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &copied)
		cancel()
		if err != nil && !failing {
			s.log.Warn("wal checkpoint failed", "err", err)
		}
		failing = err != nil
	}
}

// close stops the checkpointer and closes its connection (once: a store
// may be closed twice).
func (c *walCheckpointer) close() error {
	if c == nil {
		return nil
	}
	var err error
	c.stopped.Do(func() {
		close(c.stop)
		c.done.Wait()
		err = c.db.Close()
	})
	return err
}
