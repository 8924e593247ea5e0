package ingest

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// handlerMetrics are the push metrics, in a metrics.Set given by the caller.
//
//	logsift_ingest_received_lines_total{tenant}        entries decoded from pushes
//	logsift_ingest_received_bytes_total{tenant}        their line + structured metadata bytes
//	logsift_ingest_discarded_lines_total{tenant,reason} entries not stored, by Reason
//	logsift_ingest_discarded_bytes_total{tenant,reason}
//	logsift_ingest_requests_total{status}              push requests by HTTP status
//	logsift_ingest_request_duration_seconds            push request latency (Prometheus histogram)
//
// Received minus discarded is what the store took.
type handlerMetrics struct {
	set      *metrics.Set
	duration *metrics.PrometheusHistogram
	tenants  sync.Map // tenant ID -> *tenantMetrics
	statuses sync.Map // status code -> *metrics.Counter
}

type tenantMetrics struct {
	lines, bytes *metrics.Counter
}

func newHandlerMetrics(set *metrics.Set) *handlerMetrics {
	return &handlerMetrics{
		set:      set,
		duration: set.GetOrCreatePrometheusHistogram("logsift_ingest_request_duration_seconds"),
	}
}

func (m *handlerMetrics) tenant(id string) *tenantMetrics {
	if tm, ok := m.tenants.Load(id); ok {
		return tm.(*tenantMetrics)
	}
	tm := &tenantMetrics{
		lines: m.set.GetOrCreateCounter(fmt.Sprintf(`logsift_ingest_received_lines_total{tenant=%q}`, id)),
		bytes: m.set.GetOrCreateCounter(fmt.Sprintf(`logsift_ingest_received_bytes_total{tenant=%q}`, id)),
	}
	actual, _ := m.tenants.LoadOrStore(id, tm)
	return actual.(*tenantMetrics)
}

func (tm *tenantMetrics) received(lines, bytes int) {
	tm.lines.Add(lines)
	tm.bytes.Add(bytes)
}

// discarded adds a push's drops; rare enough that looking the counters up
// by name each time costs nothing that matters.
func (m *handlerMetrics) discarded(tenantID string, rep *Report) {
	for r := Reason(0); r < numReasons; r++ {
		if rep.Lines[r] == 0 && rep.Bytes[r] == 0 {
			continue
		}
		m.set.GetOrCreateCounter(fmt.Sprintf(`logsift_ingest_discarded_lines_total{tenant=%q,reason=%q}`, tenantID, r)).Add(rep.Lines[r])
		m.set.GetOrCreateCounter(fmt.Sprintf(`logsift_ingest_discarded_bytes_total{tenant=%q,reason=%q}`, tenantID, r)).Add(rep.Bytes[r])
	}
}

func (m *handlerMetrics) request(code int, d time.Duration) {
	m.duration.Update(d.Seconds())
	c, ok := m.statuses.Load(code)
	if !ok {
		c, _ = m.statuses.LoadOrStore(code, m.set.GetOrCreateCounter(`logsift_ingest_requests_total{status="`+strconv.Itoa(code)+`"}`))
	}
	c.(*metrics.Counter).Inc()
}
