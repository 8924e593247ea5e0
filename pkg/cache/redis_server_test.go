package cache

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/logsift/logsift/pkg/cache/redistest"
)

// TestRealRedisOutage runs the two levels against Debian's redis-server:
// values written by one process are found by another through Redis; when
// Redis is killed, lookups keep answering (misses, bounded by the
// timeout) and the breaker opens; when it comes back, the breaker closes
// and Redis is used again.
func TestRealRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	cfg := Config{
		Memory: MemoryConfig{MaxBytes: 8 << 20, Name: "test-real"},
		// A generous timeout: the test machine may be busy; the outage
		// bound below is what matters.
		Redis: RedisConfig{Addr: srv.Addr(), Name: "test-real", Timeout: 250 * time.Millisecond, BreakerFailures: 3, BreakerRetry: 50 * time.Millisecond},
	}
	writer, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	keys := make([]string, 50)
	val := bytes.Repeat([]byte("series-points "), 300) // 4 KB, compressed in Redis
	for i := range keys {
		keys[i] = fmt.Sprintf("bucket-%d", i)
		writer.Set(ctx, keys[i], val, time.Hour)
	}
	if err := writer.L2.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// A second process: empty L1, same Redis.
	cfg.Memory.Name, cfg.Redis.Name = "test-real-2", "test-real-2"
	reader, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	var lat []time.Duration
	for i, k := range keys {
		start := time.Now()
		v, ok := reader.Get(ctx, k)
		lat = append(lat, time.Since(start))
		if !ok || !bytes.Equal(v, val) {
			t.Fatalf("key %d: no hit through Redis", i)
		}
	}
	if _, ok := reader.L1.Get(ctx, keys[0]); !ok {
		t.Fatal("the Redis hit was not kept in L1")
	}
	t.Logf("lookups through Redis: p50 %s, max %s", pct(lat, 50), pct(lat, 100))

	// Redis dies mid-test.
	srv.Kill()
	lat = lat[:0]
	out := make([]Hit, 5)
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("absent-%d", i)
		start := time.Now()
		reader.GetMulti(ctx, []string{k, k + "a", k + "b", k + "c", k + "d"}, out)
		lat = append(lat, time.Since(start))
		for _, h := range out {
			if h.Level != Miss {
				t.Fatal("hit for a key that was never written")
			}
		}
		reader.Set(ctx, k, val, time.Hour) // writes must not block either
	}
	// L1 still answers what it holds.
	if _, ok := reader.Get(ctx, keys[1]); !ok {
		t.Fatal("L1 lost its entries when Redis died")
	}
	if reader.L2.Breaker() != "open" {
		t.Fatalf("breaker %s with Redis dead, want open", reader.L2.Breaker())
	}
	// Every lookup is bounded by the timeout (20ms) and most skip Redis
	// altogether; a second is an outage-sized margin, not a speed claim.
	if worst := pct(lat, 100); worst > time.Second {
		t.Fatalf("a lookup took %s with Redis dead", worst)
	}
	t.Logf("lookups with Redis dead: p50 %s, p99 %s, max %s", pct(lat, 50), pct(lat, 99), pct(lat, 100))

	// Redis comes back (empty, as after a crash without persistence).
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for reader.L2.Breaker() == "open" {
		if time.Now().After(deadline) {
			t.Fatal("the breaker stayed open after Redis came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	writer.Set(ctx, "after", []byte("back"), time.Hour)
	deadline = time.Now().Add(10 * time.Second)
	for {
		// The writer's breaker may still be open from its own failures;
		// its prober closes it like the reader's.
		if err := writer.L2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if v, ok := reader.Get(ctx, "after"); ok && string(v) == "back" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis not used again after it came back (writer breaker %s, reader breaker %s)", writer.L2.Breaker(), reader.L2.Breaker())
		}
		writer.Set(ctx, "after", []byte("back"), time.Hour)
		time.Sleep(20 * time.Millisecond)
	}
	if reader.L2.Breaker() != "closed" {
		t.Fatalf("breaker %s after a successful call, want closed", reader.L2.Breaker())
	}
}

// BenchmarkRealRedisGet measures lookups through Redis (L1 bypassed): one
// key, and the 7 buckets of a 6-hour dashboard panel in one MGET.
func BenchmarkRealRedisGet(b *testing.B) {
	srv := redistest.Start(b)
	for _, n := range []int{1, 7} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			r, err := NewRedis(RedisConfig{Addr: srv.Addr(), Name: "bench-real"})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			ctx := context.Background()
			val := bytes.Repeat([]byte("series-points "), 300)
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("k%d", i)
				r.Set(ctx, keys[i], val, time.Hour)
			}
			if err := r.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			out := make([]Hit, n)
			var lat []time.Duration
			misses := 0
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				r.GetMulti(ctx, keys, out)
				lat = append(lat, time.Since(start))
				// A call past the timeout (20ms) is a miss by design; on
				// a busy machine a few happen.
				if out[0].Level != L2 {
					misses++
				}
			}
			b.StopTimer()
			if misses*10 > len(lat) {
				b.Fatalf("%d of %d lookups missed", misses, len(lat))
			}
			b.ReportMetric(float64(pct(lat, 99).Microseconds()), "p99-µs")
			b.ReportMetric(100*float64(misses)/float64(len(lat)), "miss-%")
		})
	}
}

// BenchmarkMemoryGet measures one in-process lookup.
func BenchmarkMemoryGet(b *testing.B) {
	m, err := NewMemory(MemoryConfig{Name: "bench-mem"})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for i := range 10000 {
		m.Set(ctx, fmt.Sprintf("key-%d", i), make([]byte, 1024), time.Hour)
	}
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	lat := make([]time.Duration, 0, 1<<20)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		m.Get(ctx, keys[i%len(keys)])
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(start))
		}
		i++
	}
	b.ReportMetric(float64(pct(lat, 99).Nanoseconds()), "p99-ns")
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
