package auth

import (
	"fmt"
	"strings"
	"time"
)

// Config is the `auth:` block of the server configuration.
type Config struct {
	// Enabled is "auto" (the default: auth is on as soon as the tokens
	// file holds a token, and stays on), "true" (on: without tokens every
	// protected route answers 401) or "false" (open mode, whatever the
	// tokens file holds).
	Enabled string `yaml:"enabled"`
	// TokensFile is the token store; default <data_dir>/meta/tokens.json.
	TokensFile string `yaml:"tokens_file"`
	// ProtectMetrics requires an admin token for /metrics, which is open
	// by default so that Prometheus scrapes it without one.
	ProtectMetrics bool `yaml:"protect_metrics"`
}

type mode uint8

const (
	modeAuto mode = iota
	modeOn
	modeOff
)

func (c *Config) mode() (mode, error) {
	switch strings.ToLower(strings.TrimSpace(c.Enabled)) {
	case "", "auto":
		return modeAuto, nil
	case "true", "on", "yes":
		return modeOn, nil
	case "false", "off", "no":
		return modeOff, nil
	}
	return 0, fmt.Errorf("auth.enabled is %q: use auto, true or false", c.Enabled)
}

// OverloadConfig is the `overload:` block: how much work the server takes
// on before it refuses more. In it a zero value takes the default and a
// negative one turns the limit off.
type OverloadConfig struct {
	// MaxConcurrentQueries is how many queries one tenant runs at once
	// (every query route but live tail). Further queries wait in the
	// tenant's queue.
	MaxConcurrentQueries int `yaml:"max_concurrent_queries"`
	// MaxQueuedQueries is how many of a tenant's queries may wait for a
	// slot; past it, and past QueueTimeout of waiting, a query gets 429.
	MaxQueuedQueries int `yaml:"max_queued_queries"`
	// QueueTimeout is how long a query waits for a slot.
	QueueTimeout time.Duration `yaml:"queue_timeout"`
	// MaxConcurrentTails is how many live tails one tenant holds open
	// (Loki's max_concurrent_tail_requests).
	MaxConcurrentTails int `yaml:"max_concurrent_tail_requests"`
	// MaxInflightRequests is how many requests the server handles at once
	// (all tenants, live tails and admin routes not counted); past it new
	// ones get 503 with Retry-After.
	MaxInflightRequests int `yaml:"max_inflight_requests"`
	// MemoryHighWaterBytes: while the live heap after the last garbage
	// collection is above it, new requests get 503. Zero takes 90% of the
	// server's memory_limit.
	MemoryHighWaterBytes int64 `yaml:"memory_high_water_bytes"`
	// Breaker configures the per-tenant query circuit breakers.
	Breaker BreakerConfig `yaml:"breaker"`
	// Overrides holds per-tenant limits, merged field by field.
	Overrides map[string]TenantOverload `yaml:"overrides"`
}

// TenantOverload is a tenant's override of the per-tenant limits; zero
// inherits, negative removes the limit.
type TenantOverload struct {
	MaxConcurrentQueries int `yaml:"max_concurrent_queries"`
	MaxQueuedQueries     int `yaml:"max_queued_queries"`
	MaxConcurrentTails   int `yaml:"max_concurrent_tail_requests"`
}

// DefaultOverloadConfig returns the defaults: sized so that one tenant
// cannot occupy every core with queries, and the server refuses work
// before it runs out of memory.
func DefaultOverloadConfig() OverloadConfig {
	return OverloadConfig{
		MaxConcurrentQueries: 8,
		MaxQueuedQueries:     64,
		QueueTimeout:         2 * time.Second,
		MaxConcurrentTails:   10,
		MaxInflightRequests:  1024,
		Breaker:              DefaultBreakerConfig(),
	}
}

// fill replaces zero values with defaults.
func (c *OverloadConfig) fill() {
	d := DefaultOverloadConfig()
	fillInt(&c.MaxConcurrentQueries, d.MaxConcurrentQueries)
	fillInt(&c.MaxQueuedQueries, d.MaxQueuedQueries)
	fillInt(&c.MaxConcurrentTails, d.MaxConcurrentTails)
	fillInt(&c.MaxInflightRequests, d.MaxInflightRequests)
	if c.QueueTimeout == 0 {
		c.QueueTimeout = d.QueueTimeout
	}
	c.Breaker.fill()
}

func fillInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

// tenantLimits are the per-tenant limits in force for one tenant; a value
// <= 0 means unlimited.
type tenantLimits struct {
	queries, queued, tails int
}

func (c *OverloadConfig) forTenant(id string) tenantLimits {
	l := tenantLimits{queries: c.MaxConcurrentQueries, queued: c.MaxQueuedQueries, tails: c.MaxConcurrentTails}
	if o, ok := c.Overrides[id]; ok {
		merge := func(dst *int, v int) {
			if v != 0 {
				*dst = v
			}
		}
		merge(&l.queries, o.MaxConcurrentQueries)
		merge(&l.queued, o.MaxQueuedQueries)
		merge(&l.tails, o.MaxConcurrentTails)
	}
	return l
}
