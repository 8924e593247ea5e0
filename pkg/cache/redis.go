package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// RedisConfig configures the Redis level. Only Addr is required.
type RedisConfig struct {
	// Addr is host:port of the Redis server.
	Addr string `yaml:"address"`
	// Username is the ACL user (Redis 6 and later); empty: the default
	// user.
	Username string `yaml:"username"`
	// Password authenticates with AUTH; empty: none.
	Password string `yaml:"password"`
	// DB is the database number selected after connecting (default 0).
	DB int `yaml:"db"`
	// KeyPrefix starts every key (default "logsift:"), so that logsift can
	// share a Redis with others.
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout bounds every call, reads and writes alike (default 20ms): a
	// slow Redis costs a query at most this much, and only until the
	// breaker opens.
	Timeout time.Duration `yaml:"timeout"`
	// DialTimeout bounds connecting (default 200ms).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// PoolSize is the number of connections (default go-redis's, 10 per
	// core).
	PoolSize int `yaml:"pool_size"`
	// BreakerFailures consecutive failed calls open the breaker (default 5).
	BreakerFailures int `yaml:"breaker_failures"`
	// BreakerRetry is how often an open breaker pings Redis (default 1s).
	BreakerRetry time.Duration `yaml:"breaker_retry"`
	// CompressAbove compresses values at least this long with S2 (default
	// 1024; negative: never).
	CompressAbove int `yaml:"compress_above"`
	// WriteQueue bounds the writes waiting for the background writer
	// (default 4096); past it writes are dropped, never waited for.
	WriteQueue int `yaml:"write_queue"`
	// Name labels the metrics (default "results").
	Name string `yaml:"-"`
}

// redisKeyVersion is part of every key: a change of the framing changes
// it, so that processes of different versions never read each other's
// values.
const redisKeyVersion = "v1:"

func (c *RedisConfig) setDefaults() {
	if c.KeyPrefix == "" {
		c.KeyPrefix = "logsift:"
	}
	if c.Timeout <= 0 {
		c.Timeout = 20 * time.Millisecond
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 200 * time.Millisecond
	}
	if c.BreakerFailures <= 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerRetry <= 0 {
		c.BreakerRetry = time.Second
	}
	if c.CompressAbove == 0 {
		c.CompressAbove = 1024
	}
	if c.WriteQueue <= 0 {
		c.WriteQueue = 4096
	}
	if c.Name == "" {
		c.Name = "results"
	}
}

// Redis is the shared level.
type Redis struct {
	cfg    RedisConfig
	client *redis.Client
	br     *breaker
	q      chan redisWrite
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	// pending counts writes queued or being sent, for Sync.
	pending atomic.Int64

	m                          *levelMetrics
	errors, skipped, dropped   *metrics.Counter
	opened, decodeErrs, writes *metrics.Counter
	writtenBytes               *metrics.Counter
	set                        *metrics.Set
}

type redisWrite struct {
	key   string
	value []byte // nil: delete
	ttl   time.Duration
}

// redisLog routes go-redis's own messages (a failed dial on every probe
// while Redis is down) to slog at debug level; the breaker metrics tell
// the story.
type redisLog struct{}

func (redisLog) Printf(_ context.Context, format string, v ...any) {
	slog.Debug("redis client: " + fmt.Sprintf(format, v...))
}

var setRedisLogger sync.Once

// NewRedis returns the Redis level. It does not connect until used; a
// Redis that is down at start is simply a breaker that opens.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Addr == "" {
		return nil, errors.New("redis cache: addr is required")
	}
	cfg.setDefaults()
	setRedisLogger.Do(func() { redis.SetLogger(redisLog{}) })
	client := redis.NewClient(&redis.Options{
		Addr:     cfg.Addr,
		Username: cfg.Username,
		Password: cfg.Password,
		DB:       cfg.DB,
		// RESP2 keeps the connection free of push messages we do not use.
		Protocol:        2,
		DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
		// A retry would double the time a failing call costs; the breaker
		// is the answer to failures.
		MaxRetries:            -1,
		DialTimeout:           cfg.DialTimeout,
		DialerRetries:         1,
		ReadTimeout:           cfg.Timeout,
		WriteTimeout:          cfg.Timeout,
		PoolTimeout:           cfg.Timeout,
		ContextTimeoutEnabled: true,
		PoolSize:              cfg.PoolSize,
	})
	set := metrics.NewSet()
	l := fmt.Sprintf(`cache=%q,level="l2"`, cfg.Name)
	r := &Redis{
		cfg:        cfg,
		client:     client,
		q:          make(chan redisWrite, cfg.WriteQueue),
		done:       make(chan struct{}),
		set:        set,
		m:          newLevelMetrics(set, cfg.Name, "l2"),
		errors:     set.NewCounter(`logsift_cache_errors_total{` + l + `}`),
		skipped:    set.NewCounter(`logsift_cache_breaker_skipped_total{` + l + `}`),
		dropped:    set.NewCounter(`logsift_cache_writes_dropped_total{` + l + `}`),
		opened:     set.NewCounter(`logsift_cache_breaker_opened_total{` + l + `}`),
		decodeErrs: set.NewCounter(`logsift_cache_decode_errors_total{` + l + `}`),
		writes:     set.NewCounter(`logsift_cache_writes_total{` + l + `}`),
		// Bytes sent to Redis after compression: what the shared level
		// holds, as far as one process can tell.
		writtenBytes: set.NewCounter(`logsift_cache_written_bytes_total{` + l + `}`),
	}
	r.br = newBreaker(cfg.BreakerFailures, cfg.BreakerRetry, func(ctx context.Context) error {
		return client.Ping(ctx).Err()
	})
	r.br.opened = r.opened.Inc
	set.NewGauge(`logsift_cache_breaker_state{`+l+`}`, func() float64 { return float64(r.br.state.Load()) })
	set.NewGauge(`logsift_cache_write_queue{`+l+`}`, func() float64 { return float64(len(r.q)) })
	metrics.RegisterSet(set)
	r.wg.Add(1)
	go r.writer()
	return r, nil
}

func (r *Redis) key(k string) string { return r.cfg.KeyPrefix + redisKeyVersion + k }

// Get implements Cache.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool) {
	out := []Hit{{}}
	r.GetMulti(ctx, []string{key}, out)
	return out[0].Value, out[0].Level != Miss
}

// GetMulti implements Cache with one MGET.
func (r *Redis) GetMulti(ctx context.Context, keys []string, out []Hit) {
	clear(out)
	if len(keys) == 0 {
		return
	}
	if !r.br.allow() {
		r.skipped.Add(len(keys))
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.key(k)
	}
	vals, err := r.client.MGet(ctx, full...).Result()
	if err != nil {
		r.fail(ctx, err)
		r.m.latency.UpdateDuration(start)
		r.m.misses.Add(len(keys))
		return
	}
	r.br.success()
	for i, v := range vals {
		s, ok := v.(string)
		if !ok || i >= len(out) {
			r.m.misses.Inc()
			continue
		}
		b, err := decodeValue([]byte(s))
		if err != nil {
			r.decodeErrs.Inc()
			r.m.misses.Inc()
			continue
		}
		out[i] = Hit{Value: b, Level: L2}
		r.m.hits.Inc()
	}
	r.m.latency.UpdateDuration(start)
}

// fail counts an error; only the backend's own failures feed the breaker,
// not a caller that gave up.
func (r *Redis) fail(ctx context.Context, err error) {
	r.errors.Inc()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return
	}
	r.br.failure()
}

// Set implements Cache: the value is written in the background, or
// dropped when the queue is full or the breaker open.
func (r *Redis) Set(_ context.Context, key string, value []byte, ttl time.Duration) {
	if ttl <= 0 || len(value) > MaxValueSize || value == nil {
		return
	}
	r.enqueue(redisWrite{key: key, value: value, ttl: ttl})
}

// Delete implements Cache, in the background like Set.
func (r *Redis) Delete(_ context.Context, key string) {
	r.enqueue(redisWrite{key: key})
}

func (r *Redis) enqueue(w redisWrite) {
	if !r.br.allow() {
		r.skipped.Inc()
		return
	}
	r.pending.Add(1)
	select {
	case r.q <- w:
	default:
		r.pending.Add(-1)
		r.dropped.Inc()
	}
}

// writer sends queued writes in pipelines of up to 64.
func (r *Redis) writer() {
	defer r.wg.Done()
	batch := make([]redisWrite, 0, 64)
	for {
		select {
		case <-r.done:
			return
		case w := <-r.q:
			batch = append(batch[:0], w)
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case w := <-r.q:
				batch = append(batch, w)
			default:
				break more
			}
		}
		r.flush(batch)
		r.pending.Add(-int64(len(batch)))
	}
}

func (r *Redis) flush(batch []redisWrite) {
	if !r.br.allow() {
		r.dropped.Add(len(batch))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout*time.Duration(1+len(batch)/16))
	defer cancel()
	pipe := r.client.Pipeline()
	bytes := 0
	for _, w := range batch {
		if w.value == nil {
			pipe.Del(ctx, r.key(w.key))
			continue
		}
		v := encodeValue(w.value, r.cfg.CompressAbove)
		bytes += len(v)
		pipe.Set(ctx, r.key(w.key), v, w.ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		r.fail(ctx, err)
		r.dropped.Add(len(batch))
		return
	}
	r.br.success()
	r.writes.Add(len(batch))
	r.writtenBytes.Add(bytes)
}

// Breaker reports the breaker's state: "closed", "open" or "half-open".
func (r *Redis) Breaker() string {
	switch r.br.state.Load() {
	case breakerOpen:
		return "open"
	case breakerHalfOpen:
		return "half-open"
	}
	return "closed"
}

// Sync waits until the writes queued so far were sent (or dropped), or ctx
// ends. Tests and shutdown use it.
func (r *Redis) Sync(ctx context.Context) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for r.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return nil
		case <-t.C:
		}
	}
	return nil
}

// Close stops the writer and the prober and closes the connections.
func (r *Redis) Close() error {
	var err error
	r.once.Do(func() {
		close(r.done)
		r.wg.Wait()
		r.br.close()
		err = r.client.Close()
		metrics.UnregisterSet(r.set, true)
	})
	return err
}
