package cputime_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/meshsession/meshsession/internal/cputime"
)

// TestClocksAdvanceWithWork: spinning for 20 ms of wall time on a locked
// thread advances both the thread's and the process's CPU clocks by about
// that much (at least half of it: the thread can be descheduled on a
// loaded machine, never charged for another thread's work).
func TestClocksAdvanceWithWork(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" {
		t.Skip("CPU clocks are read on linux, darwin and freebsd only")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	proc, thread := cputime.Now(), cputime.Thread()
	spun := spin(20 * time.Millisecond)
	dThread, dProc := cputime.Thread()-thread, cputime.Now()-proc
	assert.Greater(t, dThread, spun/2, "thread clock")
	assert.LessOrEqual(t, dThread, dProc+time.Millisecond, "a thread's CPU is part of the process's")
	assert.Greater(t, dProc, spun/2, "process clock")
}

// spin burns CPU until the thread's clock has run for d or 10·d of wall
// time has passed, and returns the thread CPU it spent.
func spin(d time.Duration) time.Duration {
	start, wall := cputime.Thread(), time.Now()
	for cputime.Thread()-start < d && time.Since(wall) < 10*d {
	}
	return cputime.Thread() - start
}

func TestReportPerOperation(t *testing.T) {
	done := cputime.Report()
	spin(5 * time.Millisecond)
	assert.Zero(t, done(0), "no operations: no figure")
	assert.Greater(t, done(1), float64(time.Millisecond), "5 ms of CPU over one operation")
}
