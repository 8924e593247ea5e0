// Package sampledata generates the sample logs that logsift ships for its
// demo and for tests that must run without the external corpus: an nginx
// access log, a logfmt API service, a JSON payments service and a Java
// service with stack traces, all written by this code from a seed.
package sampledata

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/chunk"
	"github.com/logsift/logsift/pkg/labels"
)

// Stream is one generated stream.
type Stream struct {
	Labels  labels.Labels
	Entries []chunk.Entry
}

// Options control generation.
type Options struct {
	Seed  uint64
	End   time.Time     // newest timestamp
	Span  time.Duration // how far back the oldest goes
	Lines int           // entries per stream
}

// Generate returns the sample streams, each sorted by time.
func Generate(o Options) []Stream {
	if o.Lines <= 0 {
		o.Lines = 2000
	}
	if o.Span <= 0 {
		o.Span = time.Hour
	}
	if o.End.IsZero() {
		o.End = time.Now()
	}
	g := &gen{r: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), o: o}
	return []Stream{
		g.stream(labels.New("job", "nginx", "service_name", "web", "host", "web-1", "env", "demo"), g.nginx),
		g.stream(labels.New("job", "api", "service_name", "api", "host", "api-1", "env", "demo"), g.logfmt),
		g.stream(labels.New("job", "payments", "service_name", "payments", "host", "pay-1", "env", "demo"), g.json),
		g.stream(labels.New("job", "billing", "service_name", "billing", "host", "jvm-1", "env", "demo"), g.java),
	}
}

type gen struct {
	r *rand.Rand
	o Options
}

func (g *gen) stream(ls labels.Labels, line func(t time.Time, i int) string) Stream {
	start := g.o.End.Add(-g.o.Span)
	step := g.o.Span / time.Duration(g.o.Lines)
	s := Stream{Labels: ls, Entries: make([]chunk.Entry, g.o.Lines)}
	for i := range s.Entries {
		t := start.Add(time.Duration(i)*step + time.Duration(g.r.Int64N(int64(step)+1)))
		s.Entries[i] = chunk.Entry{Timestamp: t.UnixNano(), Line: []byte(line(t, i))}
	}
	return s
}

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

var paths = []string{"/", "/login", "/api/v1/orders", "/api/v1/orders/%d", "/api/v1/users/%d", "/static/app.js", "/static/logo.png", "/healthz", "/api/v1/search?q=%d", "/checkout"}

var agents = []string{
	"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"curl/8.5.0",
	"Prometheus/2.53.0",
	"Go-http-client/1.1",
}

func (g *gen) ip() string {
	return fmt.Sprintf("%d.%d.%d.%d", 10+g.r.IntN(180), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

func (g *gen) nginx(t time.Time, i int) string {
	p := g.pick(paths...)
	if strings.Contains(p, "%d") {
		p = fmt.Sprintf(p, g.r.IntN(100000))
	}
	status := 200
	switch x := g.r.IntN(100); {
	case x < 3:
		status = 500 + g.r.IntN(4)
	case x < 10:
		status = 404
	case x < 14:
		status = 301 + g.r.IntN(3)
	}
	method := "GET"
	if strings.HasPrefix(p, "/api") && g.r.IntN(3) == 0 {
		method = "POST"
	}
	return fmt.Sprintf(`%s - - [%s] "%s %s HTTP/1.1" %d %d "-" "%s" rt=%.3f`,
		g.ip(), t.UTC().Format("02/Jan/2006:15:04:05 -0700"), method, p, status, 200+g.r.IntN(50000), g.pick(agents...), g.r.Float64()*0.8)
}

func (g *gen) level() string {
	switch x := g.r.IntN(100); {
	case x < 4:
		return "error"
	case x < 12:
		return "warn"
	case x < 30:
		return "debug"
	}
	return "info"
}

func (g *gen) traceID() string {
	return fmt.Sprintf("%016x%016x", g.r.Uint64(), g.r.Uint64())
}

func (g *gen) logfmt(t time.Time, i int) string {
	lvl := g.level()
	var msg string
	switch lvl {
	case "error":
		msg = g.pick(`"upstream request failed: dial tcp 10.0.3.7:5432: connect: connection refused"`, `"context deadline exceeded while calling payments"`, `"timeout waiting for lock on orders table"`)
	case "warn":
		msg = g.pick(`"slow query"`, `"retrying request"`, `"cache miss storm"`)
	default:
		msg = g.pick(`"request served"`, `"order created"`, `"user authenticated"`, `"cache refreshed"`)
	}
	return fmt.Sprintf(`ts=%s level=%s caller=%s msg=%s method=%s path=/api/v1/orders status=%d duration=%dms trace_id=%s`,
		t.UTC().Format(time.RFC3339Nano), lvl, g.pick("server.go:142", "orders.go:88", "auth.go:31"), msg,
		g.pick("GET", "POST", "PUT"), g.status(lvl), 1+g.r.IntN(900), g.traceID())
}

func (g *gen) status(level string) int {
	switch level {
	case "error":
		return 500 + g.r.IntN(4)
	case "warn":
		return 429
	}
	return []int{200, 200, 201, 204}[g.r.IntN(4)]
}

func (g *gen) json(t time.Time, i int) string {
	lvl := g.level()
	msg := "payment authorised"
	if lvl == "error" {
		msg = g.pick("card declined by issuer", "fraud check timeout", "connection refused by ledger")
	} else if lvl == "warn" {
		msg = "retrying ledger write"
	}
	return fmt.Sprintf(`{"time":"%s","level":"%s","msg":"%s","amount":%d.%02d,"currency":"%s","customer":"cus_%06d","latency_ms":%d}`,
		t.UTC().Format(time.RFC3339Nano), strings.ToUpper(lvl), msg, g.r.IntN(500), g.r.IntN(100), g.pick("EUR", "USD", "GBP"), g.r.IntN(1000000), 5+g.r.IntN(400))
}

func (g *gen) java(t time.Time, i int) string {
	ts := t.UTC().Format("2006-01-02 15:04:05.000")
	if g.r.IntN(20) == 0 {
		return fmt.Sprintf(`%s ERROR [billing-worker-%d] c.e.billing.InvoiceJob - invoice run failed
java.lang.IllegalStateException: ledger connection refused
	at com.example.billing.LedgerClient.post(LedgerClient.java:%d)
	at com.example.billing.InvoiceJob.run(InvoiceJob.java:57)
	at java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1144)
Caused by: java.net.ConnectException: Connection refused
	at java.base/sun.nio.ch.Net.connect0(Native Method)
	... 3 more`, ts, g.r.IntN(8), 100+g.r.IntN(200))
	}
	return fmt.Sprintf(`%s %s [billing-worker-%d] c.e.billing.%s - %s`, ts, strings.ToUpper(g.pick("info", "info", "info", "debug", "warn")), g.r.IntN(8),
		g.pick("InvoiceJob", "TaxCalculator", "LedgerClient"), g.pick("processed batch", "computed tax for invoice", "posted ledger entry", "scheduled next run"))
}
