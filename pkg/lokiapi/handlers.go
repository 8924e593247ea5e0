package lokiapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

// API serves Loki's query endpoints.
type API struct {
	Engine *query.Engine
	Store  *store.Store
	Limits Limits
	// Tenants resolves X-Scope-OrgID.
	Tenants tenant.Resolver
	// Build is what /loki/api/v1/status/buildinfo reports; the zero value
	// takes DefaultBuildInfo().
	Build BuildInfo
	Now   func() time.Time // for tests; time.Now when nil
	Log   *slog.Logger
	// Events receives search.requested, .completed and .failed for every
	// query_range and query request; nil publishes none.
	Events events.Bus
	// Discovery reports what the ingest path derives for a tenant
	// (detected_level, service_name), for drilldown-limits; nil reports
	// levels on and no service name discovery.
	Discovery func(tenant string) (levels bool, serviceNameFrom []string)
}

// Register adds the endpoints to mux under Loki's paths.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("/loki/api/v1/query_range", a.queryRange)
	mux.HandleFunc("/loki/api/v1/query", a.instantQuery)
	mux.HandleFunc("/loki/api/v1/labels", a.labelNames)
	mux.HandleFunc("/loki/api/v1/label", a.labelNames)
	mux.HandleFunc("/loki/api/v1/label/{name}/values", a.labelValues)
	mux.HandleFunc("/loki/api/v1/series", a.series)
	mux.HandleFunc("/loki/api/v1/tail", a.tail)
	mux.HandleFunc("/loki/api/v1/index/stats", a.indexStats)
	mux.HandleFunc("/loki/api/v1/index/volume", a.volumeInstant)
	mux.HandleFunc("/loki/api/v1/index/volume_range", a.volumeRange)
	mux.HandleFunc("/loki/api/v1/patterns", a.patterns)
	mux.HandleFunc("/loki/api/v1/detected_labels", a.detectedLabels)
	mux.HandleFunc("/loki/api/v1/detected_fields", a.detectedFields)
	mux.HandleFunc("/loki/api/v1/detected_field/{name}/values", a.detectedFieldValues)
	mux.HandleFunc("/loki/api/v1/format_query", a.formatQuery)
	mux.HandleFunc("/loki/api/v1/status/buildinfo", a.buildInfo)
	mux.HandleFunc("/loki/api/v1/drilldown-limits", a.drilldownLimits)
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *API) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

// call is what every request needs after begin: the tenant and its limits.
type call struct {
	tenant string
	limits Limits
}

// begin parses the form and resolves the tenant; it writes the error
// response itself and returns ok=false when the request cannot go on.
func (a *API) begin(w http.ResponseWriter, r *http.Request) (call, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed: use GET or POST", http.StatusMethodNotAllowed)
		return call{}, false
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "invalid form: "+err.Error(), http.StatusBadRequest)
		return call{}, false
	}
	ids, err := a.Tenants.Multi(r)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, tenant.ErrNoOrgID) {
			code = http.StatusUnauthorized
		}
		http.Error(w, err.Error(), code)
		return call{}, false
	}
	// A query across tenants (X-Scope-OrgID: a|b) reads each tenant's
	// streams with their __tenant_id__ label, under the strictest limits
	// of the tenants named, as Loki's multi-tenant queries do.
	return call{tenant: strings.Join(ids, "|"), limits: a.Limits.ForTenants(ids)}, true
}

// withTimeout applies the tenant's query timeout.
func (c *call) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.limits.QueryTimeout > 0 {
		return context.WithTimeout(ctx, c.limits.QueryTimeout)
	}
	return context.WithCancel(ctx)
}

func (a *API) queryRange(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	p, expr, err := a.rangeQueryParams(r, &c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.run(w, r, &c, p, expr)
}

// rangeQueryParams reads a range query: query, start/end/since, limit,
// direction, step and interval.
func (a *API) rangeQueryParams(r *http.Request, c *call) (query.Params, logql.Expr, error) {
	rp, err := parseRange(r, a.now())
	if err != nil {
		return query.Params{}, nil, err
	}
	p, expr, err := a.queryParams(r, c)
	if err != nil {
		return p, nil, err
	}
	p.Start, p.End = rp.start, rp.end
	if v := r.Form.Get("step"); v != "" {
		if p.Step, err = parseStep(v); err != nil {
			return p, nil, err
		}
	}
	if v := r.Form.Get("interval"); v != "" {
		if p.Interval, err = ParseDuration("interval", v); err != nil {
			return p, nil, err
		}
	}
	if err := c.limits.checkLength(p.End.Sub(p.Start)); err != nil {
		return p, nil, err
	}
	return p, expr, nil
}

func (a *API) instantQuery(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	ts, err := ParseTime("time", r.Form.Get("time"), a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, expr, err := a.queryParams(r, &c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if _, ok := expr.(logql.SampleExpr); !ok {
		a.fail(w, r, badParam("log queries are not supported as an instant query type, please change your query to a range query type"))
		return
	}
	p.Instant = true
	p.Start, p.End = ts, ts
	a.run(w, r, &c, p, expr)
}

// queryParams reads and parses the query with its limit and direction,
// and checks the limits that depend on the query alone.
func (a *API) queryParams(r *http.Request, c *call) (query.Params, logql.Expr, error) {
	q := r.Form.Get("query")
	if strings.TrimSpace(q) == "" {
		return query.Params{}, nil, badParam("query parameter is required")
	}
	expr, err := logql.ParseExpr(q)
	if err != nil {
		return query.Params{}, nil, err
	}
	_, metric := expr.(logql.SampleExpr)
	maxEntries := c.limits.MaxEntriesPerQuery
	if metric {
		maxEntries = 0 // the entry limit does not apply to metric queries, as in Loki
	}
	limit, err := parseLimit(r, 100, maxEntries)
	if err != nil {
		return query.Params{}, nil, err
	}
	dir, err := parseDirection(r)
	if err != nil {
		return query.Params{}, nil, err
	}
	if err := c.limits.checkRangeInterval(expr); err != nil {
		return query.Params{}, nil, err
	}
	p := query.Params{Tenant: c.tenant, Query: q, Limit: limit, Direction: dir, MaxSeries: c.limits.MaxQuerySeries, NoCache: noCache(r.Header)}
	if p.MaxSeries == 0 {
		p.MaxSeries = -1 // disabled
	}
	return p, expr, nil
}

func (a *API) run(w http.ResponseWriter, r *http.Request, c *call, p query.Params, expr logql.Expr) {
	if c.limits.MaxQueryBytesRead > 0 {
		if err := c.limits.checkBytes(a.estimateBytes(c.tenant, expr, p)); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	ctx, cancel := c.withTimeout(r.Context())
	defer cancel()
	search := a.searchEvents(ctx, c.tenant, p.Query)
	res, err := a.Engine.Exec(ctx, p)
	search.done(res, err)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeQueryResult(w, r, res)
}

func (a *API) labelNames(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	rp, ms, err := a.scope(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeData(w, a.Store.LabelNames(c.tenant, ms, rp.start.UnixNano(), rp.end.UnixNano()+1))
}

func (a *API) labelValues(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if !labels.ValidName(name) {
		a.fail(w, r, badParam("invalid label name %q", name))
		return
	}
	rp, ms, err := a.scope(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeData(w, a.Store.LabelValues(c.tenant, name, ms, rp.start.UnixNano(), rp.end.UnixNano()+1))
}

// scope reads the range and the optional `query` selector that narrows
// label lookups, as Grafana sends it.
func (a *API) scope(r *http.Request) (rangeParams, []*labels.Matcher, error) {
	rp, err := parseRange(r, a.now())
	if err != nil {
		return rp, nil, err
	}
	var ms []*labels.Matcher
	if q := r.Form.Get("query"); q != "" {
		if ms, err = logql.ParseMatchers(q); err != nil {
			return rp, nil, err
		}
	}
	return rp, ms, nil
}

func (a *API) series(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	rp, err := parseRange(r, a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	selectors := r.Form["match[]"]
	if len(selectors) == 0 {
		selectors = r.Form["match"]
	}
	seen := map[uint64]bool{}
	out := []map[string]string{}
	add := func(ms []*labels.Matcher) {
		for _, ls := range a.Store.Series(c.tenant, ms, rp.start.UnixNano(), rp.end.UnixNano()+1) {
			if h := ls.Hash(); !seen[h] {
				seen[h] = true
				out = append(out, ls.Map())
			}
		}
	}
	if len(selectors) == 0 {
		add(nil)
	}
	for _, sel := range selectors {
		ms, err := logql.ParseMatchers(sel)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		add(ms)
	}
	writeData(w, out)
}

// fail answers with Loki's conventions: client mistakes are 400 with the
// message as plain text; a timeout is 504; anything else is 500.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *paramError
	var qe *logql.ParseError
	var ue *query.Error
	switch {
	case errors.As(err, &pe), errors.As(err, &qe), errors.As(err, &ue):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, context.DeadlineExceeded):
		http.Error(w, "query timed out: "+err.Error()+"; narrow the time range or the selector, or raise query.query_timeout", http.StatusGatewayTimeout)
	case errors.Is(err, context.Canceled):
		http.Error(w, "query canceled", 499)
	default:
		a.log().Error("query failed", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error: "+err.Error(), http.StatusInternalServerError)
	}
}

// noCache reports whether the request asks to bypass the result cache
// with a Cache-Control no-cache directive, as Loki's query frontend
// honours it (logcli --nocache sends it).
func noCache(h http.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-cache") {
				return true
			}
		}
	}
	return false
}
