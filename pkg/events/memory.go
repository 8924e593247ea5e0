package events

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is the in-process bus: the embedded default.
type Memory struct {
	mu     sync.RWMutex
	subs   map[*memSub]struct{}
	closed bool
	origin string
}

type memSub struct {
	c       chan *Event
	types   []Type
	dropped atomic.Int64
	once    sync.Once
}

// NewMemory returns an in-process bus. origin tags the events it publishes.
func NewMemory(origin string) *Memory {
	return &Memory{subs: map[*memSub]struct{}{}, origin: origin}
}

// Publish delivers e to every matching subscriber that has room.
func (m *Memory) Publish(_ context.Context, e *Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Origin == "" {
		e.Origin = m.origin
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for s := range m.subs {
		if len(s.types) > 0 && !slices.Contains(s.types, e.Type) {
			continue
		}
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
	return nil
}

// Subscribe implements Bus.
func (m *Memory) Subscribe(ctx context.Context, types ...Type) (*Subscription, error) {
	s := &memSub{c: make(chan *Event, 1024), types: types}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		close(s.c)
		return &Subscription{C: s.c, Dropped: s.dropped.Load, Close: func() {}}, nil
	}
	m.subs[s] = struct{}{}
	m.mu.Unlock()
	closeFn := func() {
		s.once.Do(func() {
			m.mu.Lock()
			delete(m.subs, s)
			m.mu.Unlock()
			close(s.c)
		})
	}
	go func() {
		<-ctx.Done()
		closeFn()
	}()
	return &Subscription{C: s.c, Dropped: s.dropped.Load, Close: closeFn}, nil
}

// Close ends every subscription.
func (m *Memory) Close() error {
	m.mu.Lock()
	subs := m.subs
	m.subs = map[*memSub]struct{}{}
	m.closed = true
	m.mu.Unlock()
	for s := range subs {
		s.once.Do(func() { close(s.c) })
	}
	return nil
}
