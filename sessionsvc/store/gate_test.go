package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queued waits until n writers wait at g.
func queued(t *testing.T, g *writeGate, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return g.waiting(prioBulk) == n }, 5*time.Second, time.Millisecond)
}

func TestWriteGateOrder(t *testing.T) {
	var g writeGate
	ctx := context.Background()
	require.NoError(t, g.acquire(ctx, prioBulk))
	got := make(chan string, 5)
	enqueue := func(name string, p priority, n int) {
		go func() {
			if err := g.acquire(ctx, p); err == nil {
				got <- name
				g.release()
			}
		}()
		queued(t, &g, n)
	}
	// Queued in the worst order: bulk first, the revocation last.
	enqueue("bulk1", prioBulk, 1)
	enqueue("login", prioNormal, 2)
	enqueue("bulk2", prioBulk, 3)
	enqueue("revoke1", prioRevoke, 4)
	enqueue("revoke2", prioRevoke, 5)
	g.release()
	var order []string
	for i := 0; i < 5; i++ {
		order = append(order, <-got)
	}
	assert.Equal(t, []string{"revoke1", "revoke2", "login", "bulk1", "bulk2"}, order)
	// Free again.
	require.NoError(t, g.acquire(ctx, prioBulk))
	g.release()
}

func TestWriteGateCancel(t *testing.T) {
	var g writeGate
	require.NoError(t, g.acquire(context.Background(), prioBulk))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.acquire(ctx, prioRevoke) }()
	queued(t, &g, 1)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, 0, g.waiting(prioBulk), "a cancelled waiter leaves the queue")
	g.release()
	// The gate is free: a new writer gets it at once.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	require.NoError(t, g.acquire(ctx2, prioBulk))
	g.release()
}
