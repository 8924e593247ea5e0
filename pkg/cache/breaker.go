package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Breaker states, as the logsift_cache_breaker_state gauge reports them.
const (
	breakerClosed   int32 = 0 // calls go through
	breakerOpen     int32 = 1 // calls are skipped; a prober checks the backend
	breakerHalfOpen int32 = 2 // the probe succeeded; the next call decides
)

// breaker stops calling a backend that keeps failing. Unlike the textbook
// breaker, no query ever pays for a trial call: while open, a background
// prober pings the backend, and only once a ping succeeds do queries call
// it again (half-open); the first failure then opens it again, the first
// success closes it.
type breaker struct {
	state     atomic.Int32
	fails     atomic.Int32
	threshold int32
	retry     time.Duration
	probe     func(ctx context.Context) error

	mu      sync.Mutex
	probing bool
	stop    chan struct{}
	stopped bool
	wg      sync.WaitGroup
	opened  func() // metrics hook
}

func newBreaker(threshold int, retry time.Duration, probe func(ctx context.Context) error) *breaker {
	return &breaker{threshold: int32(max(threshold, 1)), retry: retry, probe: probe, stop: make(chan struct{})}
}

// allow says whether a call may go to the backend now.
func (b *breaker) allow() bool { return b.state.Load() != breakerOpen }

func (b *breaker) success() {
	b.fails.Store(0)
	if b.state.Load() == breakerHalfOpen {
		b.state.CompareAndSwap(breakerHalfOpen, breakerClosed)
	}
}

func (b *breaker) failure() {
	n := b.fails.Add(1)
	if n >= b.threshold || b.state.Load() == breakerHalfOpen {
		b.trip()
	}
}

// trip opens the breaker and starts the prober unless it runs already.
func (b *breaker) trip() {
	if b.state.Swap(breakerOpen) != breakerOpen && b.opened != nil {
		b.opened()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.probing || b.stopped {
		return
	}
	b.probing = true
	b.wg.Add(1)
	go b.probeLoop()
}

func (b *breaker) probeLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.retry)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(b.retry, 100*time.Millisecond))
		err := b.probe(ctx)
		cancel()
		if err == nil {
			b.mu.Lock()
			b.probing = false
			b.fails.Store(0)
			b.state.Store(breakerHalfOpen)
			b.mu.Unlock()
			return
		}
	}
}

func (b *breaker) close() {
	b.mu.Lock()
	if !b.stopped {
		b.stopped = true
		close(b.stop)
	}
	b.mu.Unlock()
	b.wg.Wait()
}
