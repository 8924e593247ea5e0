// Package cache keeps query results: a byte-bounded in-process level (L1),
// an optional Redis level (L2) shared by server processes, and the record
// of writes that tells a reader whether a cached result is still true.
//
// The cache never fails or slows a query: every error of the Redis level
// is a miss, its calls are bounded by short timeouts, and a circuit breaker
// stops calling it while it is down.
package cache

import (
	"context"
	"time"
)

// Level says which level answered a lookup.
type Level uint8

// The levels.
const (
	Miss Level = iota
	L1
	L2
)

func (l Level) String() string {
	switch l {
	case L1:
		return "l1"
	case L2:
		return "l2"
	}
	return "miss"
}

// Hit is the answer to one key of a lookup: Value is nil on a miss.
type Hit struct {
	Value []byte
	Level Level
}

// Cache stores opaque values under string keys. Values handed to Set and
// returned by Get are shared: neither side may modify them afterwards.
// Every method is safe for concurrent use and never fails: an error is a
// miss (Get) or a dropped write (Set, Delete), counted in metrics.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool)
	// GetMulti looks up several keys at once (one round trip to Redis);
	// out[i] answers keys[i]. out must have len(keys) elements.
	GetMulti(ctx context.Context, keys []string, out []Hit)
	// Set stores value for at most ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration)
	Delete(ctx context.Context, key string)
}

// Tiered is the two-level cache: L1 first, then L2; an L2 hit is copied
// into L1. Writes go to both (to L2 in the background).
type Tiered struct {
	L1 *Memory
	L2 *Redis // nil: in process only
	// FillTTL is the lifetime of an L1 copy of an L2 hit (default 1h).
	FillTTL time.Duration
}

// Get implements Cache.
func (t *Tiered) Get(ctx context.Context, key string) ([]byte, bool) {
	if v, ok := t.L1.Get(ctx, key); ok {
		return v, true
	}
	if t.L2 == nil {
		return nil, false
	}
	v, ok := t.L2.Get(ctx, key)
	if ok {
		t.L1.Set(ctx, key, v, t.fillTTL())
	}
	return v, ok
}

// GetMulti implements Cache.
func (t *Tiered) GetMulti(ctx context.Context, keys []string, out []Hit) {
	t.L1.GetMulti(ctx, keys, out)
	if t.L2 == nil {
		return
	}
	var missing []string
	var at []int
	for i := range keys {
		if out[i].Level == Miss {
			missing = append(missing, keys[i])
			at = append(at, i)
		}
	}
	if len(missing) == 0 {
		return
	}
	hits := make([]Hit, len(missing))
	t.L2.GetMulti(ctx, missing, hits)
	for j, h := range hits {
		if h.Level == Miss {
			continue
		}
		out[at[j]] = h
		t.L1.Set(ctx, missing[j], h.Value, t.fillTTL())
	}
}

// Set implements Cache.
func (t *Tiered) Set(ctx context.Context, key string, value []byte, ttl time.Duration) {
	t.L1.Set(ctx, key, value, ttl)
	if t.L2 != nil {
		t.L2.Set(ctx, key, value, ttl)
	}
}

// Delete implements Cache.
func (t *Tiered) Delete(ctx context.Context, key string) {
	t.L1.Delete(ctx, key)
	if t.L2 != nil {
		t.L2.Delete(ctx, key)
	}
}

func (t *Tiered) fillTTL() time.Duration {
	if t.FillTTL > 0 {
		return t.FillTTL
	}
	return time.Hour
}

// Close releases both levels.
func (t *Tiered) Close() error {
	t.L1.Close()
	if t.L2 != nil {
		return t.L2.Close()
	}
	return nil
}

// Config is the result cache's configuration in the server's file.
type Config struct {
	// Memory is the in-process level, always on.
	Memory MemoryConfig `yaml:"memory"`
	// Redis is the shared level; off while Redis.Addr is empty.
	Redis RedisConfig `yaml:"redis"`
	// Writes tunes how long results live and how late writes are judged.
	Writes WritesConfig `yaml:"writes"`
}

// New builds the levels cfg asks for.
func New(cfg Config) (*Tiered, error) {
	l1, err := NewMemory(cfg.Memory)
	if err != nil {
		return nil, err
	}
	t := &Tiered{L1: l1}
	if cfg.Redis.Addr != "" {
		if cfg.Redis.Name == "" {
			cfg.Redis.Name = cfg.Memory.Name
		}
		if t.L2, err = NewRedis(cfg.Redis); err != nil {
			l1.Close()
			return nil, err
		}
	}
	return t, nil
}
