package auth

import (
	"net/http"
	"strings"
)

// Class says which overload protection a route gets.
type Class uint8

// The route classes.
const (
	// ClassOther routes only count towards the global in-flight limit.
	ClassOther Class = iota
	// ClassQuery routes take one of the tenant's concurrent-query slots
	// and pass the tenant's circuit breaker.
	ClassQuery
	// ClassStream routes are long-lived (live tail): they take one of the
	// tenant's stream slots instead of a query slot, and are not counted
	// as in flight, since a connection held open for hours is not load.
	ClassStream
	// ClassExempt routes are never shed (admin routes such as /flush,
	// which is what an operator reaches for when the server is loaded).
	ClassExempt
)

// Route says what a path needs. Rules match in order; the first whose
// Method (empty: any) and Path match wins. Path ending in "/" matches
// every path under it; otherwise it matches exactly.
type Route struct {
	Method string
	Path   string
	// Scope is the scope a token needs; empty means the route is open
	// (no token, no tenant).
	Scope Scope
	// Multi lets X-Scope-OrgID name several tenants ("a|b"), as queries
	// may.
	Multi bool
	Class Class
}

func (rt *Route) matches(method, path string) bool {
	if rt.Method != "" && rt.Method != method {
		return false
	}
	if strings.HasSuffix(rt.Path, "/") {
		return strings.HasPrefix(path, rt.Path) || path == rt.Path[:len(rt.Path)-1]
	}
	return path == rt.Path
}

// fallbackRoute applies to paths no rule names: admin, so that a route
// added to the mux without a rule is closed rather than open.
var fallbackRoute = Route{Scope: ScopeAdmin, Class: ClassOther}

// DefaultRoutes are the rules of logsift's HTTP API. metricsOpen leaves
// /metrics open for scrapers without a token.
func DefaultRoutes(metricsOpen bool) []Route {
	metrics := Route{Path: "/metrics", Class: ClassExempt}
	if !metricsOpen {
		metrics.Scope = ScopeAdmin
	}
	return []Route{
		{Path: "/ready", Class: ClassExempt},
		metrics,
		// Writes.
		{Path: "/loki/api/v1/push", Scope: ScopePush},
		{Path: "/api/prom/push", Scope: ScopePush},
		// Reads. Live tail is a stream; the metadata endpoints Grafana
		// calls while one edits a query are queries like any other.
		{Path: "/loki/api/v1/tail", Scope: ScopeQuery, Multi: true, Class: ClassStream},
		{Path: "/api/prom/tail", Scope: ScopeQuery, Multi: true, Class: ClassStream},
		{Path: "/loki/api/v1/", Scope: ScopeQuery, Multi: true, Class: ClassQuery},
		{Path: "/api/prom/", Scope: ScopeQuery, Multi: true, Class: ClassQuery},
		// Streaming search: a query whose answer comes in batches.
		{Path: "/api/v1/search/stream", Scope: ScopeQuery, Multi: true, Class: ClassQuery},
		// Import progress and other events, streamed for as long as the
		// client listens.
		{Method: http.MethodGet, Path: "/api/v1/events", Scope: ScopeQuery, Multi: true, Class: ClassStream},
		// Administration.
		{Path: "/api/v1/tokens/", Scope: ScopeAdmin, Class: ClassExempt},
		{Path: "/flush", Scope: ScopeAdmin, Class: ClassExempt},
		{Path: "/compact", Scope: ScopeAdmin, Class: ClassExempt},
		{Path: "/debug/pprof/", Scope: ScopeAdmin, Class: ClassExempt},
		{Method: http.MethodDelete, Path: "/api/v1/workspaces/", Scope: ScopeAdmin, Class: ClassExempt},
		{Method: http.MethodGet, Path: "/api/v1/workspaces/", Scope: ScopeQuery, Class: ClassQuery},
		{Path: "/api/v1/workspaces/", Scope: ScopePush},
	}
}

// routeFor returns the first matching rule, or the fallback.
func routeFor(routes []Route, method, path string) *Route {
	for i := range routes {
		if routes[i].matches(method, path) {
			return &routes[i]
		}
	}
	return &fallbackRoute
}
