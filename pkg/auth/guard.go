package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/logsift/logsift/pkg/events"
	"github.com/logsift/logsift/pkg/tenant"
)

// Options configure a Guard.
type Options struct {
	Auth     Config
	Overload OverloadConfig
	// Tokens is the token store; nil runs in open mode (an error when
	// Auth.Enabled is "true").
	Tokens *TokenFile
	// Tenants resolves X-Scope-OrgID in open mode (default tenant,
	// required header), as the handlers did before auth.
	Tenants tenant.Resolver
	// Routes classify HTTP paths; nil means DefaultRoutes.
	Routes []Route
	// GRPCRoutes classify gRPC full method names; nil means
	// DefaultGRPCRoutes.
	GRPCRoutes []Route
	// RouteName maps a path to its metric label; nil uses the matching
	// rule's path.
	RouteName func(path string) string
	// MaxTrackedTenants bounds the tenant label of the Guard's metrics;
	// default 256.
	MaxTrackedTenants int
	Metrics           *metrics.Set
	Logger            *slog.Logger
	Now               func() time.Time
}

// Guard authenticates requests, resolves their tenant, and admits them
// within the overload limits. One Guard serves HTTP (Handler) and gRPC
// (UnaryServerInterceptor, StreamServerInterceptor).
type Guard struct {
	mode       mode
	tokens     *TokenFile
	tenants    tenant.Resolver
	routes     []Route
	grpcRoutes []Route
	routeName  func(string) string
	overload   OverloadConfig
	highWater  uint64
	log        *slog.Logger
	logSample  *rate.Limiter
	now        func() time.Time

	authOn   atomic.Bool // auto mode: auth has been switched on
	inflight atomic.Int64
	queries  tenantSlots
	tails    tenantSlots
	breakers breakers
	heap     *heapGauge
	metrics  *guardMetrics
}

// NewGuard builds a Guard and logs the mode it starts in; open mode is a
// warning. Call it after the Go memory limit is set: the default
// high-water mark derives from it.
func NewGuard(opts Options) (*Guard, error) {
	m, err := opts.Auth.mode()
	if err != nil {
		return nil, err
	}
	if m == modeOn && opts.Tokens == nil {
		return nil, errors.New("auth.enabled is true but no tokens file is open")
	}
	opts.Overload.fill()
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.GetDefaultSet()
	}
	if opts.MaxTrackedTenants <= 0 {
		opts.MaxTrackedTenants = 256
	}
	if opts.Routes == nil {
		opts.Routes = DefaultRoutes(!opts.Auth.ProtectMetrics)
	}
	if opts.GRPCRoutes == nil {
		opts.GRPCRoutes = DefaultGRPCRoutes()
	}
	g := &Guard{
		mode:       m,
		tokens:     opts.Tokens,
		tenants:    opts.Tenants,
		routes:     opts.Routes,
		grpcRoutes: opts.GRPCRoutes,
		routeName:  opts.RouteName,
		overload:   opts.Overload,
		log:        opts.Logger,
		logSample:  rate.NewLimiter(1, 5),
		now:        opts.Now,
		breakers:   breakers{cfg: opts.Overload.Breaker},
		heap:       newHeapGauge(),
	}
	switch hw := opts.Overload.MemoryHighWaterBytes; {
	case hw == 0:
		g.highWater = defaultHighWater()
	case hw > 0:
		g.highWater = uint64(hw)
	}
	g.metrics = newGuardMetrics(opts.Metrics, opts.MaxTrackedTenants, g)
	g.logMode()
	return g, nil
}

func (g *Guard) logMode() {
	path := ""
	if g.tokens != nil {
		path = g.tokens.Path()
	}
	if g.Enabled() {
		all, active := g.tokens.Count()
		g.log.Info("auth is on: requests need an API token", "tokens_file", path, "tokens", all, "active", active)
		return
	}
	reason := "auth.enabled is false"
	if g.mode == modeAuto {
		reason = "the tokens file has no tokens"
	}
	g.log.Warn("auth is OFF (open mode): every request is allowed, and X-Scope-OrgID alone chooses the tenant; fine for a demo on localhost, not for a shared server. Create a token with `logsift token create` (auth then turns on) or set auth.enabled: true",
		"reason", reason, "tokens_file", path)
}

// Enabled reports whether requests need a token now.
func (g *Guard) Enabled() bool {
	switch g.mode {
	case modeOn:
		return true
	case modeOff:
		return false
	}
	if g.authOn.Load() {
		return true
	}
	if g.tokens == nil {
		return false
	}
	if all, _ := g.tokens.Count(); all == 0 {
		return false
	}
	// Once on, auto mode stays on: deleting the tokens file or revoking
	// every token must lock the server, not open it.
	if g.authOn.CompareAndSwap(false, true) {
		g.log.Warn("auth is now ON: the tokens file has tokens; requests without a valid token get 401", "tokens_file", g.tokens.Path())
	}
	return true
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal the Guard admitted.
func PrincipalFromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}

// credential extracts the token from an Authorization value: a bearer
// token, or basic auth whose password is the token (the username is
// ignored), which is all Promtail, Alloy, Fluent Bit and Grafana's Loki
// datasource can all send.
func credential(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, rest, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return strings.TrimSpace(rest), true
	case strings.EqualFold(scheme, "Basic"):
		if _, pw, ok := r.BasicAuth(); ok {
			return pw, true
		}
	}
	return "", true // present but unusable: refused as an invalid token
}

// authenticate returns the principal of a request to a protected route.
func (g *Guard) authenticate(secret string, hasCredential bool, orgHeader string, rt *Route) (*Principal, error) {
	if !g.Enabled() {
		p := &Principal{Open: true}
		var err error
		p.OrgID, err = g.openOrgID(orgHeader, rt.Multi)
		if err != nil {
			return nil, err
		}
		p.Tenant = p.OrgID
		return p, nil
	}
	if !hasCredential {
		return nil, &requestError{code: http.StatusUnauthorized, msg: "unauthenticated: this server requires an API token: send `Authorization: Bearer <token>` (or basic auth with the token as password); an admin creates tokens with `logsift token create`"}
	}
	var t *liveToken
	if g.tokens != nil {
		t, _ = g.tokens.lookup(secret)
	}
	if t == nil {
		return nil, &requestError{code: http.StatusUnauthorized, msg: "unauthenticated: the API token is invalid, unknown or revoked"}
	}
	p := principalOf(t)
	if !p.Has(rt.Scope) {
		return p, &requestError{code: http.StatusForbidden, msg: fmt.Sprintf("forbidden: token %s lacks the %q scope this route needs (it has %s); create a token with --scope %s",
			t.ID, rt.Scope, scopeList(t.Scopes), rt.Scope)}
	}
	var err error
	if p.OrgID, err = p.resolveOrgID(orgHeader, rt.Multi); err != nil {
		return p, err
	}
	return p, nil
}

// openOrgID resolves the tenant in open mode as tenant.Resolver does.
func (g *Guard) openOrgID(header string, multi bool) (string, error) {
	if header == "" {
		switch {
		case g.tenants.Required:
			return "", &requestError{code: http.StatusUnauthorized, msg: tenant.ErrNoOrgID.Error()}
		case g.tenants.Default != "":
			header = g.tenants.Default
		default:
			header = tenant.DefaultID
		}
	}
	if multi {
		ids, err := tenant.ParseQueryIDs(header)
		if err != nil {
			return "", &requestError{code: http.StatusBadRequest, msg: err.Error()}
		}
		return tenant.JoinQueryIDs(ids), nil
	}
	if err := tenant.Validate(header); err != nil {
		return "", &requestError{code: http.StatusBadRequest, msg: err.Error()}
	}
	return header, nil
}

func scopeList(s []Scope) string {
	parts := make([]string, len(s))
	for i, sc := range s {
		parts[i] = string(sc)
	}
	return strings.Join(parts, ",")
}

// annotateSpan labels the request's trace span (when tracing is on) with
// who the request acts as.
func annotateSpan(ctx context.Context, p *Principal) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("logsift.tenant", p.OrgID))
	if p.TokenID != "" {
		span.SetAttributes(attribute.String("logsift.token_id", p.TokenID))
	}
}

// Handler wraps next with authentication, tenant resolution and overload
// protection.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := routeFor(g.routes, r.Method, r.URL.Path)
		if rt.Scope == "" {
			next.ServeHTTP(w, r)
			return
		}
		secret, hasCred := credential(r)
		p, err := g.authenticate(secret, hasCred, strings.TrimSpace(r.Header.Get(tenant.Header)), rt)
		if err != nil {
			g.refuse(w, r, p, rt, err)
			return
		}
		if p.Open {
			g.metrics.authResult("open")
		} else {
			g.metrics.authResult("ok")
		}
		annotateSpan(r.Context(), p)
		// The authenticated tenant replaces the header as well as riding
		// in the context, so that a handler reading either sees it; the
		// token goes no further than here.
		r2 := r.WithContext(tenant.WithID(WithPrincipal(withActor(r.Context(), p), p), p.OrgID))
		r2.Header = r.Header.Clone()
		r2.Header.Set(tenant.Header, p.OrgID)
		r2.Header.Del("Authorization")

		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		g.admitHTTP(sw, r2, rt, p.OrgID, next)
		g.metrics.request(g.route(r.URL.Path, rt), p.OrgID, rt.Scope, sw.code)
	})
}

// withActor names the token in the events the request causes (audit log);
// in open mode the handlers name the client address instead.
func withActor(ctx context.Context, p *Principal) context.Context {
	if p.Open || p.TokenName == "" && p.TokenID == "" {
		return ctx
	}
	name := p.TokenName
	if name == "" {
		name = p.TokenID
	}
	return events.WithActor(ctx, "token:"+name)
}

func (g *Guard) route(path string, rt *Route) string {
	if g.routeName != nil {
		return g.routeName(path)
	}
	if rt == &fallbackRoute {
		return "other"
	}
	return rt.Path
}

// admitHTTP runs next within the overload limits of the route's class.
func (g *Guard) admitHTTP(w *statusWriter, r *http.Request, rt *Route, orgID string, next http.Handler) {
	done, err := g.admit(r.Context(), rt, orgID)
	if err != nil {
		g.reject(w, err)
		return
	}
	next.ServeHTTP(w, r)
	done(outcomeOf(w.code))
}

// overloadError is a refusal for load: 429 or 503 with Retry-After.
type overloadError struct {
	code   int
	retry  time.Duration
	reason string
	msg    string
}

func (e *overloadError) Error() string { return e.msg }

func (g *Guard) reject(w http.ResponseWriter, err error) {
	var oe *overloadError
	if errors.As(err, &oe) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(oe.retry.Seconds())))))
		http.Error(w, oe.msg, oe.code)
		return
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

func nopDone(outcome) {}

// admit applies the overload limits of the route's class and returns the
// function to call with the outcome when the request is done.
func (g *Guard) admit(ctx context.Context, rt *Route, orgID string) (func(outcome), error) {
	switch rt.Class {
	case ClassExempt:
		return nopDone, nil
	case ClassStream:
		lim := g.overload.forTenant(orgID)
		if lim.tails <= 0 {
			return nopDone, nil
		}
		release, _, running, _ := g.tails.acquire(ctx, orgID, lim.tails, 0, 0)
		if release == nil {
			g.metrics.rejected("tenant_tails")
			return nil, &overloadError{code: http.StatusTooManyRequests, retry: 5 * time.Second, reason: "tenant_tails",
				msg: fmt.Sprintf("too many live tails: tenant %q has %d open (limit %d); close one or raise overload.max_concurrent_tail_requests", orgID, running, lim.tails)}
		}
		return func(outcome) { release() }, nil
	}

	n := g.inflight.Add(1)
	leave := func() { g.inflight.Add(-1) }
	if limit := g.overload.MaxInflightRequests; limit > 0 && n > int64(limit) {
		leave()
		g.metrics.rejected("inflight")
		return nil, &overloadError{code: http.StatusServiceUnavailable, retry: time.Second, reason: "inflight",
			msg: fmt.Sprintf("server overloaded: %d requests in flight (limit overload.max_inflight_requests=%d); retry shortly", n-1, limit)}
	}
	now := g.now()
	if g.highWater > 0 {
		if live := g.heap.get(now); live > g.highWater {
			leave()
			g.metrics.rejected("memory")
			return nil, &overloadError{code: http.StatusServiceUnavailable, retry: 2 * time.Second, reason: "memory",
				msg: fmt.Sprintf("server overloaded: live heap %d MiB is above the high-water mark of %d MiB (overload.memory_high_water_bytes); retry shortly", live>>20, g.highWater>>20)}
		}
	}
	if rt.Class != ClassQuery {
		return func(outcome) { leave() }, nil
	}

	ok, probe, retry := g.breakers.allow(orgID, now)
	if !ok {
		leave()
		g.metrics.rejected("breaker")
		return nil, &overloadError{code: http.StatusServiceUnavailable, retry: retry, reason: "breaker",
			msg: fmt.Sprintf("queries of tenant %q are failing or timing out, so new ones are refused for a while (circuit breaker open); retry in %s, and narrow the query if it keeps timing out", orgID, retry.Round(time.Second))}
	}
	lim := g.overload.forTenant(orgID)
	release := func() {}
	if lim.queries > 0 {
		start := time.Now()
		var why slotRefusal
		var running, waiting int
		release, why, running, waiting = g.queries.acquire(ctx, orgID, lim.queries, max(lim.queued, 0), g.overload.QueueTimeout)
		g.metrics.waited(time.Since(start))
		if release == nil {
			leave()
			if probe {
				g.breakers.record(orgID, g.now(), outcomeNeutral, true)
			}
			if why == slotCanceled {
				return nil, &overloadError{code: 499, reason: "canceled", msg: "request canceled while waiting for a query slot"}
			}
			g.metrics.rejected("tenant_queries")
			return nil, &overloadError{code: http.StatusTooManyRequests, retry: time.Second, reason: "tenant_queries",
				msg: fmt.Sprintf("too many outstanding requests: tenant %q has %d queries running and %d waiting (limit %d running, %d waiting); retry later or raise overload.max_concurrent_queries",
					orgID, running, waiting, lim.queries, max(lim.queued, 0))}
		}
	}
	return func(o outcome) {
		release()
		leave()
		if g.breakers.record(orgID, g.now(), o, probe) {
			g.metrics.trips.Inc()
			g.log.Warn("query circuit breaker opened: this tenant's queries keep failing or timing out; refusing new ones for the cool-down",
				"tenant", orgID, "cooldown", g.overload.Breaker.Cooldown)
		}
	}, nil
}

// refuse answers an authentication or tenant error.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, p *Principal, rt *Route, err error) {
	code := http.StatusBadRequest
	var re *requestError
	if errors.As(err, &re) {
		code = re.code
	}
	result := "bad_request"
	switch code {
	case http.StatusUnauthorized:
		result = "unauthenticated"
		w.Header().Set("WWW-Authenticate", `Bearer realm="logsift"`)
	case http.StatusForbidden:
		result = "forbidden"
	}
	g.metrics.authResult(result)
	if p != nil {
		g.metrics.request(g.route(r.URL.Path, rt), p.Tenant, rt.Scope, code)
	}
	g.logRefusal(r.Context(), code, err.Error(), r.URL.Path, r.RemoteAddr, p)
	http.Error(w, err.Error(), code)
}

// logRefusal logs refused requests, a few per second at most: a client
// with a bad token retrying in a loop must not flood the log.
func (g *Guard) logRefusal(ctx context.Context, code int, msg, path, remote string, p *Principal) {
	level := slog.LevelInfo
	if code == http.StatusForbidden {
		level = slog.LevelWarn
	}
	if !g.log.Enabled(ctx, level) || !g.logSample.Allow() {
		return
	}
	attrs := []any{"status", code, "path", path, "remote", remote, "reason", msg}
	if p != nil && p.TokenID != "" {
		attrs = append(attrs, "token_id", p.TokenID, "token_tenant", p.Tenant)
	}
	g.log.Log(ctx, level, "request refused", attrs...)
}

// statusWriter records the status a handler answers with. Unwrap lets
// http.ResponseController and WebSocket upgrades reach the connection.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
