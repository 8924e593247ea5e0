package auth

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// guardMetrics are the Guard's metrics:
//
//	logsift_auth_requests_total{result}                 ok, open, unauthenticated, forbidden, bad_request
//	logsift_tenant_requests_total{tenant,scope}          requests that passed auth, by tenant
//	logsift_tenant_request_errors_total{route,tenant,code} answers >= 400 after auth
//	logsift_overload_rejected_total{reason}              inflight, memory, breaker, tenant_queries, tenant_tails
//	logsift_query_queue_wait_seconds                     time a query waited for its tenant's slot
//	logsift_inflight_requests                            requests counted against max_inflight_requests
//	logsift_query_breakers_open                          tenants whose query breaker is open
//	logsift_query_breaker_trips_total                    times a breaker opened
//	logsift_auth_tokens{state}                           tokens in the tokens file, active and revoked
//	logsift_auth_open_mode                               1 while auth is off
//
// Tenant label values are bounded: tenant IDs are validated, and past
// maxTracked distinct tenants further ones are counted as "other".
type guardMetrics struct {
	set        *metrics.Set
	maxTracked int

	mu      sync.Mutex
	tenants map[string]bool

	queueWait *metrics.PrometheusHistogram
	trips     *metrics.Counter
	results   sync.Map // string -> *metrics.Counter
	counters  sync.Map // name -> *metrics.Counter
	perTenant sync.Map // tenantScope -> *metrics.Counter
}

func newGuardMetrics(set *metrics.Set, maxTracked int, g *Guard) *guardMetrics {
	m := &guardMetrics{
		set:        set,
		maxTracked: maxTracked,
		tenants:    map[string]bool{},
		queueWait:  set.GetOrCreatePrometheusHistogram("logsift_query_queue_wait_seconds"),
		trips:      set.GetOrCreateCounter("logsift_query_breaker_trips_total"),
	}
	set.GetOrCreateGauge("logsift_inflight_requests", func() float64 { return float64(g.inflight.Load()) })
	set.GetOrCreateGauge("logsift_query_breakers_open", func() float64 { return float64(g.breakers.open()) })
	set.GetOrCreateGauge("logsift_auth_open_mode", func() float64 {
		if g.Enabled() {
			return 0
		}
		return 1
	})
	if g.tokens != nil {
		set.GetOrCreateGauge(`logsift_auth_tokens{state="active"}`, func() float64 {
			_, active := g.tokens.Count()
			return float64(active)
		})
		set.GetOrCreateGauge(`logsift_auth_tokens{state="revoked"}`, func() float64 {
			all, active := g.tokens.Count()
			return float64(all - active)
		})
	}
	return m
}

// tenantLabel bounds the tenant label's values.
func (m *guardMetrics) tenantLabel(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tenants[id] {
		return id
	}
	if len(m.tenants) >= m.maxTracked {
		return "other"
	}
	m.tenants[id] = true
	return id
}

func (m *guardMetrics) counter(name string) *metrics.Counter {
	if c, ok := m.counters.Load(name); ok {
		return c.(*metrics.Counter)
	}
	c, _ := m.counters.LoadOrStore(name, m.set.GetOrCreateCounter(name))
	return c.(*metrics.Counter)
}

func (m *guardMetrics) authResult(result string) {
	m.counter(`logsift_auth_requests_total{result="` + result + `"}`).Inc()
}

func (m *guardMetrics) rejected(reason string) {
	m.counter(`logsift_overload_rejected_total{reason="` + reason + `"}`).Inc()
}

type tenantScope struct {
	tenant string
	scope  Scope
}

func (m *guardMetrics) request(route, tenantID string, scope Scope, code int) {
	key := tenantScope{tenantID, scope}
	c, ok := m.perTenant.Load(key)
	if !ok {
		t := m.tenantLabel(tenantID)
		c = m.counter(fmt.Sprintf(`logsift_tenant_requests_total{tenant=%q,scope=%q}`, t, scope))
		if t == tenantID {
			// Only tracked tenants get a cache entry, so the cache is
			// bounded like the label values.
			m.perTenant.Store(key, c)
		}
	}
	c.(*metrics.Counter).Inc()
	if code < 400 {
		return
	}
	t := m.tenantLabel(tenantID)
	m.counter(fmt.Sprintf(`logsift_tenant_request_errors_total{route=%q,tenant=%q,code="%s"}`, route, t, strconv.Itoa(code))).Inc()
}

func (m *guardMetrics) waited(d time.Duration) { m.queueWait.Update(d.Seconds()) }
