package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/logsift/logsift/pkg/cache"
	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
)

// CacheConfig is the cache section of the server configuration: the
// result cache of metric range queries (docs/cache.md). Every field has a
// default, so the zero value runs the in-process level of 64 MiB with no
// Redis:
//
//	cache:
//	  enabled: true              # default
//	  max_bytes: 67108864        # in-process level (L1)
//	  memo_bytes: 16777216       # whole answers to repeated queries
//	  redis:                     # shared level (L2), off while address is empty
//	    address: 127.0.0.1:6379
//	    password: ""
//	    db: 0
//	    timeout: 20ms            # per call; a slower Redis is a miss
//	    dial_timeout: 200ms
type CacheConfig struct {
	// Enabled turns the result cache on (nil: on).
	Enabled *bool `yaml:"enabled"`
	// MaxBytes bounds the in-process level: keys, values and per-entry
	// overhead (0: 64 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// MemoBytes bounds the memo of whole answers to repeated queries over
	// settled ranges, kept decoded beside the levels (0: 16 MiB; negative:
	// none).
	MemoBytes int64 `yaml:"memo_bytes"`
	// Redis is the level shared by server processes; empty address: none.
	Redis cache.RedisConfig `yaml:"redis"`
	// FreshnessLag: only time buckets ending this long before now are
	// cached (0: 1m), as entries near now keep arriving.
	FreshnessLag time.Duration `yaml:"freshness_lag"`
	// Bucket is the length of a cached bucket of steps (0: 1h).
	Bucket time.Duration `yaml:"bucket"`
	// AlignQueriesWithStep moves the start and end of metric range
	// queries down to a multiple of their step, as Loki's setting of that
	// name, so that a dashboard refreshing now-6h..now hits the same
	// buckets every time (nil: on).
	AlignQueriesWithStep *bool `yaml:"align_queries_with_step"`
	// MaxAge is the age past which a cached bucket is not used (0: 24h).
	MaxAge time.Duration `yaml:"max_age"`
	// ClockSkew is the clock difference between server processes sharing
	// a Redis that is tolerated when judging late writes (0: 1s).
	ClockSkew time.Duration `yaml:"clock_skew"`
}

// DefaultCacheConfig is the embedded default: the zero value, spelled out.
func DefaultCacheConfig() CacheConfig { return CacheConfig{} }

func (c CacheConfig) enabled() bool { return c.Enabled == nil || *c.Enabled }

// newResultCache builds the result cache cfg asks for and connects it to
// the store's write notifications (a late write into a cached range makes
// the buckets over it invalid) and to the event bus, which carries those
// writes to and from other server processes (bus may be nil: this process
// alone). It returns a nil cache when the cache is disabled; the engine
// takes it with Engine.UseResultCache. close stops the notifications and
// releases both levels; call it before closing the store and the bus.
func newResultCache(cfg CacheConfig, st *store.Store, bus events.Bus, log *slog.Logger) (*query.ResultCache, func() error, error) {
	if log == nil {
		log = slog.Default()
	}
	if !cfg.enabled() {
		log.Info("result cache disabled")
		return nil, func() error { return nil }, nil
	}
	if st == nil {
		return nil, nil, errors.New("result cache: no store")
	}
	if cfg.MaxBytes < 0 {
		return nil, nil, fmt.Errorf("cache.max_bytes %d: must not be negative", cfg.MaxBytes)
	}
	levels, err := cache.New(cache.Config{
		Memory: cache.MemoryConfig{MaxBytes: cfg.MaxBytes},
		Redis:  cfg.Redis,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("result cache: %w", err)
	}
	writes := cache.NewWrites(cache.WritesConfig{MaxAge: cfg.MaxAge, Skew: cfg.ClockSkew})
	ctx, cancel := context.WithCancel(context.Background())
	if bus != nil {
		// Writes other processes report; this process's own come back
		// too and are recorded twice, which is harmless.
		if err := writes.Follow(ctx, bus); err != nil {
			cancel()
			levels.Close()
			return nil, nil, fmt.Errorf("result cache: %w", err)
		}
	}
	stopNotify := st.OnWrite(0, writes.Hook(bus))

	rcCfg := query.DefaultResultCacheConfig()
	if cfg.FreshnessLag > 0 {
		rcCfg.FreshnessLag = cfg.FreshnessLag
	}
	if cfg.Bucket > 0 {
		rcCfg.Bucket = cfg.Bucket
	}
	if cfg.AlignQueriesWithStep != nil {
		rcCfg.AlignStep = *cfg.AlignQueriesWithStep
	}
	rcCfg.MemoBytes = cfg.MemoBytes
	rc := query.NewResultCache(levels, writes, bus, rcCfg)

	l1 := cfg.MaxBytes
	if l1 == 0 {
		l1 = 64 << 20
	}
	redisAddr := "off"
	if cfg.Redis.Addr != "" {
		redisAddr = cfg.Redis.Addr
	}
	log.Info("result cache", "memory_bytes", l1, "memo_bytes", rcCfg.MemoBytes, "redis", redisAddr,
		"bucket", rcCfg.Bucket, "freshness_lag", rcCfg.FreshnessLag, "align_queries_with_step", rcCfg.AlignStep)

	closed := false
	closeFn := func() error {
		if closed {
			return nil
		}
		closed = true
		stopNotify() // reports what was written until now, then stops
		cancel()
		rc.Close()
		if err := levels.Close(); err != nil {
			return fmt.Errorf("close result cache: %w", err)
		}
		return nil
	}
	return rc, closeFn, nil
}
