package cache

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logsift/logsift/pkg/cache/redistest"
)

// Tests of the Redis level against Debian's redis-server (redistest):
// what is stored, under which key, for how long, and what a Redis that
// stops answering does to lookups. redis_server_test.go has the outage
// of a whole two-level cache, with Redis killed and restarted.

func newTestRedis(t *testing.T, addr string, cfg RedisConfig) *Redis {
	t.Helper()
	cfg.Addr = addr
	if cfg.Name == "" {
		cfg.Name = t.Name()
	}
	r, err := NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// rawClient looks at the server directly, past the level under test.
func rawClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv.Addr(), RedisConfig{Timeout: time.Second, KeyPrefix: "test:"})
	raw := rawClient(t, srv.Addr())
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789"), 1000)
	r.Set(ctx, "small", []byte("v"), time.Hour)
	r.Set(ctx, "big", big, time.Hour)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := raw.Get(ctx, "test:"+redisKeyVersion+"big").Bytes()
	if err != nil {
		keys, _ := raw.Keys(ctx, "*").Result()
		t.Fatalf("key not written under the prefix and version (%v); keys: %v", err, keys)
	}
	if len(stored) >= len(big)/2 {
		t.Fatalf("a compressible 10 KB value is stored as %d bytes", len(stored))
	}
	if ttl := raw.TTL(ctx, "test:"+redisKeyVersion+"big").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("TTL %s, want 1h", ttl)
	}
	out := make([]Hit, 3)
	r.GetMulti(ctx, []string{"small", "none", "big"}, out)
	if string(out[0].Value) != "v" || out[0].Level != L2 || out[1].Level != Miss || !bytes.Equal(out[2].Value, big) {
		t.Fatalf("GetMulti: %v %v %v", out[0].Level, out[1].Level, out[2].Level)
	}
	// A foreign or corrupt value under our key is a miss, not an error,
	// and does not count against Redis's health.
	if err := raw.Set(ctx, "test:"+redisKeyVersion+"small", "\x07junk", 0).Err(); err != nil {
		t.Fatal(err)
	}
	decodeErrs := r.decodeErrs.Get()
	if _, ok := r.Get(ctx, "small"); ok {
		t.Fatal("corrupt value returned as a hit")
	}
	if r.decodeErrs.Get() != decodeErrs+1 {
		t.Fatal("the corrupt value was not counted")
	}
	r.Delete(ctx, "big")
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Get(ctx, "big"); ok {
		t.Fatal("hit after Delete")
	}
	if n := raw.Exists(ctx, "test:"+redisKeyVersion+"big").Val(); n != 0 {
		t.Fatal("Delete left the key in Redis")
	}
	if r.Breaker() != "closed" {
		t.Fatalf("breaker %s after successful calls", r.Breaker())
	}
}

// TestRedisFrozen freezes redis-server (SIGSTOP): connections stay open
// and nothing answers, the outage where only timeouts help. Lookups must
// end within the timeout, the breaker must open so that later lookups do
// not wait at all, and once Redis runs again the breaker must close.
func TestRedisFrozen(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 100 * time.Millisecond
	r := newTestRedis(t, srv.Addr(), RedisConfig{Timeout: timeout, BreakerFailures: 3, BreakerRetry: 20 * time.Millisecond})
	ctx := context.Background()
	r.Set(ctx, "k", []byte("v"), time.Hour)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Get(ctx, "k"); !ok {
		t.Fatal("no hit before the outage")
	}

	srv.Pause()
	defer srv.Resume()
	for i := 0; i < 3; i++ {
		start := time.Now()
		if _, ok := r.Get(ctx, "k"); ok {
			t.Fatal("hit from a frozen Redis")
		}
		// The timeout bounds the wait; the margin is for a busy machine,
		// far below the seconds an unbounded read would hang.
		if d := time.Since(start); d > timeout+time.Second {
			t.Fatalf("a lookup against a frozen Redis took %s (timeout %s)", d, timeout)
		}
	}
	if r.Breaker() != "open" {
		t.Fatalf("breaker %s after 3 timeouts, want open", r.Breaker())
	}
	// While open, lookups and writes do not reach Redis at all.
	skipped := r.skipped.Get()
	errs := r.errors.Get()
	for range 100 {
		if _, ok := r.Get(ctx, "k"); ok {
			t.Fatal("hit while the breaker is open")
		}
		r.Set(ctx, "k2", []byte("v"), time.Hour)
	}
	if got := r.skipped.Get() - skipped; got != 200 {
		t.Fatalf("%d calls skipped while open, want 200", got)
	}
	if r.errors.Get() != errs {
		t.Fatal("calls reached the frozen Redis while the breaker was open")
	}

	srv.Resume()
	deadline := time.Now().Add(10 * time.Second)
	for r.Breaker() == "open" {
		if time.Now().After(deadline) {
			t.Fatal("the breaker never left the open state after Redis recovered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if v, ok := r.Get(ctx, "k"); !ok || string(v) != "v" {
		t.Fatal("no hit after the breaker let calls through again")
	}
	if r.Breaker() != "closed" {
		t.Fatalf("breaker %s after a successful call, want closed", r.Breaker())
	}
}

func TestTieredFillsL1FromL2(t *testing.T) {
	srv := redistest.Start(t)
	l1, err := NewMemory(MemoryConfig{MaxBytes: 1 << 20, Name: "test-tiered"})
	if err != nil {
		t.Fatal(err)
	}
	l2, err := NewRedis(RedisConfig{Addr: srv.Addr(), Name: "test-tiered", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tc := &Tiered{L1: l1, L2: l2}
	defer tc.Close()
	ctx := context.Background()
	tc.Set(ctx, "k", []byte("value"), time.Hour)
	if err := l2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	l1.Delete(ctx, "k") // as if another process had written it
	out := make([]Hit, 2)
	tc.GetMulti(ctx, []string{"k", "missing"}, out)
	if out[0].Level != L2 || string(out[0].Value) != "value" || out[1].Level != Miss {
		t.Fatalf("GetMulti = %+v", out)
	}
	if v, ok := l1.Get(ctx, "k"); !ok || string(v) != "value" {
		t.Fatal("an L2 hit was not copied into L1")
	}
	tc.Delete(ctx, "k")
	if err := l2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := tc.Get(ctx, "k"); ok {
		t.Fatal("hit after Delete")
	}
}
