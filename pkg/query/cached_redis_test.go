package query

import (
	"context"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/logsift/logsift/pkg/cache"
	"github.com/logsift/logsift/pkg/cache/redistest"
	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/labels"
)

// TestCachedThroughRealRedis shares buckets between two "processes"
// through Debian's redis-server, kills Redis while queries run, and brings
// it back.
func TestCachedThroughRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	streams, _ := genData(21)
	f := newCachedFixture(t, true, ResultCacheConfig{Bucket: 20 * time.Minute}, streams...)
	ctx := context.Background()

	// Each process has its own L1 and the same Redis.
	process := func(name string) (*Engine, *countingCache, *cache.Tiered) {
		t.Helper()
		tc, err := cache.New(cache.Config{
			Memory: cache.MemoryConfig{MaxBytes: 16 << 20, Name: name},
			Redis:  cache.RedisConfig{Addr: srv.Addr(), Name: name, Timeout: 250 * time.Millisecond, BreakerFailures: 3, BreakerRetry: 50 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tc.Close() })
		cc := &countingCache{Cache: tc}
		e := &Engine{Store: f.st}
		e.UseResultCache(NewResultCache(cc, f.writes, nil, ResultCacheConfig{Bucket: 20 * time.Minute}))
		t.Cleanup(func() { e.UseResultCache(nil) })
		return e, cc, tc
	}
	a, _, ta := process("redis-a")
	b, cb, tb := process("redis-b")
	q := `sum by (level) (count_over_time({job="gen"} | logfmt [1m]))`
	p := f.params(q, at(0), at(7200), time.Minute)
	compare := func(e *Engine, p Params) {
		t.Helper()
		f.cached = e
		f.check(t, p)
	}
	compare(a, p)
	if err := ta.L2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	compare(b, p)
	if cb.l2hits.Load() == 0 || cb.sets.Load() != 0 {
		t.Fatalf("process b: %d hits through Redis, %d buckets computed; want all from Redis", cb.l2hits.Load(), cb.sets.Load())
	}

	// Redis dies; queries keep answering, correctly, and the breaker opens.
	srv.Kill()
	var worst time.Duration
	for i := 0; i < 20; i++ {
		// A new query each time: L1 misses, L2 lookups.
		p := f.params(fmt.Sprintf(`sum by (status) (count_over_time({job="gen"} | logfmt [%ds]))`, 60+i), at(float64(i*600)), at(7200), time.Minute)
		start := time.Now()
		compare(b, p)
		worst = max(worst, time.Since(start))
	}
	if tb.L2.Breaker() != "open" {
		t.Fatalf("breaker %s with Redis dead, want open", tb.L2.Breaker())
	}
	t.Logf("slowest query (cached and uncached engine both) with Redis dead: %s", worst)

	// Redis comes back: the breaker closes and buckets go through it again.
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for tb.L2.Breaker() == "open" {
		if time.Now().After(deadline) {
			t.Fatal("breaker still open after Redis came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p2 := f.params(`sum(rate({job="gen"}[5m]))`, at(0), at(7200), time.Minute)
	compare(b, p2)
	if err := tb.L2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c, cc, _ := process("redis-c")
	compare(c, p2)
	if cc.l2hits.Load() == 0 || cc.sets.Load() != 0 {
		t.Fatalf("process c after the restart: %d hits through Redis, %d computed", cc.l2hits.Load(), cc.sets.Load())
	}
}

// TestCachedInvalidationAcrossProcesses has two "processes" (each its own
// event bus connection, write record, L1 and engine) share buckets
// through a real Redis and learn of each other's writes through a real
// NATS JetStream server: a late write reported in process a makes process
// b compute the buckets over it again instead of serving them from its L1
// or from Redis.
func TestCachedInvalidationAcrossProcesses(t *testing.T) {
	srv := redistest.Start(t)
	ns := runNATS(t)
	streams, _ := genData(23)
	f := newCachedFixture(t, true, ResultCacheConfig{Bucket: 20 * time.Minute}, streams...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	type process struct {
		e      *Engine
		cc     *countingCache
		tc     *cache.Tiered
		writes *cache.Writes
		bus    *events.NATS
	}
	start := func(name string) *process {
		t.Helper()
		bus, err := events.NewNATS(events.NATSConfig{URL: ns.ClientURL()}, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bus.Close() })
		w := cache.NewWrites(cache.WritesConfig{Now: f.clock.now, MaxAge: 1000 * 24 * time.Hour})
		if err := w.Follow(ctx, bus); err != nil {
			t.Fatal(err)
		}
		tc, err := cache.New(cache.Config{
			Memory: cache.MemoryConfig{MaxBytes: 16 << 20, Name: name},
			Redis:  cache.RedisConfig{Addr: srv.Addr(), Name: name, Timeout: 250 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tc.Close() })
		cc := &countingCache{Cache: tc}
		e := &Engine{Store: f.st}
		e.UseResultCache(NewResultCache(cc, w, bus, ResultCacheConfig{Bucket: 20 * time.Minute}))
		t.Cleanup(func() { e.UseResultCache(nil) })
		return &process{e: e, cc: cc, tc: tc, writes: w, bus: bus}
	}
	a, b := start("xproc-a"), start("xproc-b")
	f.clock.add(time.Minute) // past both floors

	q := `sum(count_over_time({job="gen"}[1m]))`
	p := f.params(q, at(0), at(7200), time.Minute)
	f.cached = a.e
	f.check(t, p)
	if err := a.tc.L2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	f.cached = b.e
	before := f.check(t, p)
	if b.cc.l2hits.Load() == 0 || b.cc.sets.Load() != 0 {
		t.Fatalf("process b: %d hits through Redis, %d buckets computed; want all from Redis", b.cc.l2hits.Load(), b.cc.sets.Load())
	}
	b.cc.reset()
	f.check(t, p)
	if b.cc.misses.Load() != 0 {
		t.Fatalf("process b, warm: %d misses", b.cc.misses.Load())
	}

	// A late write lands in process a, and a's store reports it (the
	// function store.OnWrite calls; the store's side is tested in
	// pkg/store).
	var es []chunk.Entry
	for i := range 200 {
		es = append(es, entry(2400+float64(i), "late line"))
	}
	f.append(t, false, labels.New("job", "gen", "stream", "late"), es...)
	f.clock.add(time.Second)
	a.writes.Hook(a.bus)(f.tenant, at(2400).UnixNano(), at(2599).UnixNano())
	computed := f.clock.now().Add(-time.Second).UnixNano()
	deadline := time.Now().Add(20 * time.Second)
	for b.writes.Valid(f.tenant, at(2400).UnixNano(), at(2599).UnixNano(), computed) {
		if time.Now().After(deadline) {
			t.Fatal("process b never learned of the write through NATS")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.clock.add(5 * time.Second)
	b.cc.reset()
	after := f.check(t, p) // equal to the engine's answer, with the write
	if diffMatrix(before.Matrix, after.Matrix) == "" {
		t.Fatal("the late write did not change the answer: the test proves nothing")
	}
	if b.cc.sets.Load() == 0 {
		t.Fatal("process b recomputed nothing after the write")
	}
	// Buckets far from the write stayed cached.
	if b.cc.hits.Load() == 0 {
		t.Fatal("the write invalidated every bucket, not only those over it")
	}
}

// runNATS starts an embedded NATS server with JetStream on loopback.
func runNATS(t *testing.T) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatalf("NATS server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(20 * time.Second) {
		t.Fatal("NATS server did not become ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}
