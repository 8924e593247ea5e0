package auth

import (
	"sync"
	"time"
)

// BreakerConfig configures the query circuit breakers. A tenant's breaker
// opens when, within Window, at least MinFailures of its queries failed
// and they were at least FailureRatio of all its queries. While open, the
// tenant's new queries get 503 at once for Cooldown; then one probe query
// runs, and its outcome closes the breaker or opens it again.
//
// Failures are answers of 500, 502, 503 and 504 (a store error, a query
// timeout): the kind that costs the server work and will most likely
// recur. Client mistakes (4xx) and canceled requests count as nothing.
type BreakerConfig struct {
	// Disabled turns the breakers off.
	Disabled     bool          `yaml:"disabled"`
	Window       time.Duration `yaml:"window"`
	MinFailures  int           `yaml:"min_failures"`
	FailureRatio float64       `yaml:"failure_ratio"`
	Cooldown     time.Duration `yaml:"cooldown"`
}

// DefaultBreakerConfig returns the defaults.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{Window: 30 * time.Second, MinFailures: 5, FailureRatio: 0.5, Cooldown: 10 * time.Second}
}

func (c *BreakerConfig) fill() {
	d := DefaultBreakerConfig()
	if c.Window <= 0 {
		c.Window = d.Window
	}
	if c.MinFailures <= 0 {
		c.MinFailures = d.MinFailures
	}
	if c.FailureRatio <= 0 || c.FailureRatio > 1 {
		c.FailureRatio = d.FailureRatio
	}
	if c.Cooldown <= 0 {
		c.Cooldown = d.Cooldown
	}
}

type breakerState uint8

const (
	breakerClosed breakerState = iota
	breakerOpen
	breakerHalfOpen
)

// outcome is what a finished request tells its breaker.
type outcome uint8

const (
	outcomeSuccess outcome = iota
	outcomeFailure
	outcomeNeutral // canceled by the client: says nothing about the store
)

// outcomeOf classifies an HTTP status.
func outcomeOf(code int) outcome {
	switch code {
	case 500, 502, 503, 504:
		return outcomeFailure
	case 499:
		return outcomeNeutral
	}
	return outcomeSuccess
}

// breaker is one tenant's circuit breaker.
type breaker struct {
	state          breakerState
	windowStart    time.Time
	total, failing int
	openUntil      time.Time
	probing        bool
}

// allow says whether a query may run now; probe marks the one query of a
// half-open breaker whose outcome decides. When refused, retry is how long
// until the breaker admits a probe.
func (b *breaker) allow(now time.Time) (ok, probe bool, retry time.Duration) {
	switch b.state {
	case breakerOpen:
		if now.Before(b.openUntil) {
			return false, false, b.openUntil.Sub(now)
		}
		b.state = breakerHalfOpen
		b.probing = true
		return true, true, 0
	case breakerHalfOpen:
		if b.probing {
			return false, false, time.Second
		}
		b.probing = true
		return true, true, 0
	}
	return true, false, 0
}

// record takes a finished query's outcome and reports whether the
// breaker opened because of it.
func (b *breaker) record(now time.Time, o outcome, probe bool, cfg *BreakerConfig) (opened bool) {
	if probe {
		b.probing = false
		switch o {
		case outcomeFailure:
			b.state = breakerOpen
			b.openUntil = now.Add(cfg.Cooldown)
			return true
		case outcomeSuccess:
			b.state = breakerClosed
			b.windowStart, b.total, b.failing = now, 0, 0
		}
		return false
	}
	if b.state != breakerClosed || o == outcomeNeutral {
		// A query admitted before the breaker opened says nothing new.
		return false
	}
	if now.Sub(b.windowStart) > cfg.Window {
		b.windowStart, b.total, b.failing = now, 0, 0
	}
	b.total++
	if o == outcomeFailure {
		b.failing++
	}
	if b.failing >= cfg.MinFailures && float64(b.failing) >= cfg.FailureRatio*float64(b.total) {
		b.state = breakerOpen
		b.openUntil = now.Add(cfg.Cooldown)
		return true
	}
	return false
}

// idle reports whether the breaker holds nothing worth keeping.
func (b *breaker) idle(now time.Time, cfg *BreakerConfig) bool {
	return b.state == breakerClosed && (b.failing == 0 || now.Sub(b.windowStart) > cfg.Window)
}

// breakers holds the breakers of the tenants that have recently queried.
type breakers struct {
	cfg BreakerConfig
	mu  sync.Mutex
	m   map[string]*breaker
}

// maxIdleBreakers is how many breakers may pile up before idle ones are
// dropped.
const maxIdleBreakers = 1024

func (bs *breakers) allow(key string, now time.Time) (ok, probe bool, retry time.Duration) {
	if bs.cfg.Disabled {
		return true, false, 0
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[key]
	if b == nil {
		return true, false, 0
	}
	return b.allow(now)
}

func (bs *breakers) record(key string, now time.Time, o outcome, probe bool) (opened bool) {
	if bs.cfg.Disabled {
		return false
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[key]
	if b == nil {
		if o != outcomeFailure {
			return false // nothing to remember about a tenant whose queries succeed
		}
		if bs.m == nil {
			bs.m = map[string]*breaker{}
		}
		if len(bs.m) >= maxIdleBreakers {
			for k, ob := range bs.m {
				if ob.idle(now, &bs.cfg) {
					delete(bs.m, k)
				}
			}
		}
		b = &breaker{windowStart: now}
		bs.m[key] = b
	}
	return b.record(now, o, probe, &bs.cfg)
}

// open returns how many breakers are open or half-open.
func (bs *breakers) open() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	n := 0
	for _, b := range bs.m {
		if b.state != breakerClosed {
			n++
		}
	}
	return n
}
