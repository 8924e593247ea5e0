package auth

import (
	"context"
	"sync"
	"time"
)

// tenantSlots bounds the requests one tenant runs at once, per tenant,
// with a bounded queue in front. Tenants that have nothing running or
// waiting take no memory, so tenant IDs from headers in open mode cannot
// grow it without bound.
type tenantSlots struct {
	mu      sync.Mutex
	tenants map[string]*slots
}

type slots struct {
	sem     chan struct{}
	waiting int
	users   int // holders plus waiters; the entry goes when it drops to 0
}

// slotRefusal says why acquire gave up.
type slotRefusal uint8

const (
	slotOK slotRefusal = iota
	slotQueueFull
	slotTimeout
	slotCanceled
)

// acquire takes one of limit slots for key, waiting at most wait behind at
// most maxQueued others. It returns a release function when it succeeds,
// and the numbers running and waiting when it does not.
func (t *tenantSlots) acquire(ctx context.Context, key string, limit, maxQueued int, wait time.Duration) (release func(), why slotRefusal, running, waiting int) {
	t.mu.Lock()
	if t.tenants == nil {
		t.tenants = map[string]*slots{}
	}
	s := t.tenants[key]
	if s == nil || cap(s.sem) != limit {
		if s != nil && s.users > 0 {
			// The limit changed under running requests: keep the old
			// semaphore until they finish (a reload may resize it).
			limit = cap(s.sem)
		} else {
			s = &slots{sem: make(chan struct{}, limit)}
			t.tenants[key] = s
		}
	}
	select {
	case s.sem <- struct{}{}:
		s.users++
		t.mu.Unlock()
		return t.releaser(key, s), slotOK, 0, 0
	default:
	}
	if s.waiting >= maxQueued || wait <= 0 {
		running, waiting = len(s.sem), s.waiting
		t.mu.Unlock()
		return nil, slotQueueFull, running, waiting
	}
	s.waiting++
	s.users++
	t.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case s.sem <- struct{}{}:
		t.mu.Lock()
		s.waiting--
		t.mu.Unlock()
		return t.releaser(key, s), slotOK, 0, 0
	case <-timer.C:
		why = slotTimeout
	case <-ctx.Done():
		why = slotCanceled
	}
	t.mu.Lock()
	s.waiting--
	running, waiting = len(s.sem), s.waiting
	t.drop(key, s)
	t.mu.Unlock()
	return nil, why, running, waiting
}

func (t *tenantSlots) releaser(key string, s *slots) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			<-s.sem
			t.mu.Lock()
			t.drop(key, s)
			t.mu.Unlock()
		})
	}
}

// drop ends one use; t.mu is held.
func (t *tenantSlots) drop(key string, s *slots) {
	s.users--
	if s.users == 0 && t.tenants[key] == s {
		delete(t.tenants, key)
	}
}

// tracked returns how many tenants have something running or waiting.
func (t *tenantSlots) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.tenants)
}
