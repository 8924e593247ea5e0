package lokiapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/pkg/query"
	"github.com/logsift/logsift/pkg/store"
	"github.com/logsift/logsift/pkg/tenant"
)

// Limits bound what one query may ask for.
type Limits struct {
	// MaxEntriesPerQuery caps `limit` (Loki's max_entries_limit_per_query).
	MaxEntriesPerQuery int `yaml:"max_entries_limit_per_query"`
	// QueryTimeout ends a query that runs longer.
	QueryTimeout time.Duration `yaml:"query_timeout"`
}

// DefaultLimits are Loki's defaults where Loki has one.
func DefaultLimits() Limits {
	return Limits{MaxEntriesPerQuery: 5000, QueryTimeout: time.Minute}
}

// API serves Loki's query endpoints.
type API struct {
	Engine *query.Engine
	Store  *store.Store
	Limits Limits
	// Tenants resolves X-Scope-OrgID.
	Tenants tenant.Resolver
	Now     func() time.Time // for tests; time.Now when nil
	Log     *slog.Logger
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

// begin parses the form and resolves the tenant; it writes the error
// response itself and returns ok=false when the request cannot go on.
func (a *API) begin(w http.ResponseWriter, r *http.Request) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed: use GET or POST", http.StatusMethodNotAllowed)
		return "", false
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "invalid form: "+err.Error(), http.StatusBadRequest)
		return "", false
	}
	ids, err := a.Tenants.Multi(r)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, tenant.ErrNoOrgID) {
			code = http.StatusUnauthorized
		}
		http.Error(w, err.Error(), code)
		return "", false
	}
	if len(ids) != 1 {
		http.Error(w, "queries across several tenants (X-Scope-OrgID: a|b) are not supported yet; query one tenant at a time", http.StatusBadRequest)
		return "", false
	}
	return ids[0], true
}

func (a *API) queryRange(w http.ResponseWriter, r *http.Request) {
	tid, ok := a.begin(w, r)
	if !ok {
		return
	}
	rp, err := parseRange(r, a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := a.queryParams(r, tid)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p.Start, p.End = rp.start, rp.end
	if v := r.Form.Get("step"); v != "" {
		if p.Step, err = parseDuration("step", v); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if v := r.Form.Get("interval"); v != "" {
		if p.Interval, err = parseDuration("interval", v); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	a.run(w, r, p)
}

func (a *API) instantQuery(w http.ResponseWriter, r *http.Request) {
	tid, ok := a.begin(w, r)
	if !ok {
		return
	}
	ts, err := parseTime("time", r.Form.Get("time"), a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := a.queryParams(r, tid)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p.Instant = true
	p.End = ts
	lookback := time.Hour
	if v := r.Form.Get("since"); v != "" {
		if lookback, err = parseDuration("since", v); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	p.Start = ts.Add(-lookback)
	a.run(w, r, p)
}

func (a *API) queryParams(r *http.Request, tid string) (query.Params, error) {
	q := r.Form.Get("query")
	if strings.TrimSpace(q) == "" {
		return query.Params{}, badParam("query parameter is required")
	}
	limit, err := parseLimit(r, 100, a.Limits.MaxEntriesPerQuery)
	if err != nil {
		return query.Params{}, err
	}
	dir, err := parseDirection(r)
	if err != nil {
		return query.Params{}, err
	}
	return query.Params{Tenant: tid, Query: q, Limit: limit, Direction: dir}, nil
}

func (a *API) run(w http.ResponseWriter, r *http.Request, p query.Params) {
	ctx := r.Context()
	if a.Limits.QueryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.Limits.QueryTimeout)
		defer cancel()
	}
	res, err := a.Engine.Exec(ctx, p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeQueryResult(w, r, res)
}

func (a *API) labelNames(w http.ResponseWriter, r *http.Request) {
	tid, ok := a.begin(w, r)
	if !ok {
		return
	}
	rp, ms, err := a.scope(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeData(w, a.Store.LabelNames(tid, ms, rp.start.UnixNano(), rp.end.UnixNano()+1))
}

func (a *API) labelValues(w http.ResponseWriter, r *http.Request) {
	tid, ok := a.begin(w, r)
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
	writeData(w, a.Store.LabelValues(tid, name, ms, rp.start.UnixNano(), rp.end.UnixNano()+1))
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
	tid, ok := a.begin(w, r)
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
		for _, ls := range a.Store.Series(tid, ms, rp.start.UnixNano(), rp.end.UnixNano()+1) {
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
		http.Error(w, "query timed out: "+err.Error()+"; narrow the time range or the selector, or raise limits.query_timeout", http.StatusGatewayTimeout)
	case errors.Is(err, context.Canceled):
		http.Error(w, "query canceled", 499)
	default:
		a.log().Error("query failed", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error: "+err.Error(), http.StatusInternalServerError)
	}
}
