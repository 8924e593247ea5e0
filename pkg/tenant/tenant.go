// Package tenant resolves and validates the tenant (Loki's "org ID") a
// request acts for, and carries it in a context.
//
// Tenant IDs follow Loki's rules so that clients configured for Loki work
// unchanged: the ID comes from the X-Scope-OrgID header (the x-scope-orgid
// metadata of a gRPC call, grpc.go); without the header
// the request belongs to the default tenant "fake" (Loki's tenant when auth
// is disabled) unless the resolver requires the header. Queries may name
// several tenants joined by '|'; writes never may.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Header is the HTTP header that names the tenant, as in Loki and Cortex.
const Header = "X-Scope-OrgID"

// DefaultID is the tenant of requests without a Header when the header is
// not required. Loki uses the same name with auth disabled, so data pushed
// to either system by an unconfigured client lands under the same tenant.
const DefaultID = "fake"

// MaxIDLength is Loki's limit on the length of one tenant ID in bytes.
const MaxIDLength = 150

// querySeparator joins the tenants of a multi-tenant query ("a|b").
const querySeparator = '|'

// ErrNoOrgID is returned when the header is required but missing. Its text
// is Loki's, which some clients and tests look for.
var ErrNoOrgID = errors.New("no org id")

// Validate reports what is wrong with id as a single tenant ID, or nil.
// Allowed are at most MaxIDLength bytes of ASCII letters, digits and
// ! - _ . * ' ( ); "." and ".." are refused because tenants name directories.
func Validate(id string) error {
	switch {
	case id == "":
		return errors.New("tenant ID is empty")
	case len(id) > MaxIDLength:
		return fmt.Errorf("tenant ID is %d bytes long, the limit is %d", len(id), MaxIDLength)
	case id == "." || id == "..":
		return fmt.Errorf("tenant ID %q is not allowed", id)
	}
	for i := 0; i < len(id); i++ {
		if !validIDByte(id[i]) {
			if id[i] == querySeparator {
				return fmt.Errorf("tenant ID %q names several tenants ('|'), which only queries may do", id)
			}
			return fmt.Errorf("tenant ID %q has the unsupported character %q at byte %d; allowed are letters, digits and !-_.*'()", id, id[i], i)
		}
	}
	return nil
}

func validIDByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '-', '_', '.', '*', '\'', '(', ')':
		return true
	}
	return false
}

// ParseQueryIDs splits a query's org ID "a|b|c" into its tenants, validates
// each, and returns them sorted without duplicates. A single ID is valid too.
func ParseQueryIDs(orgID string) ([]string, error) {
	if orgID == "" {
		return nil, errors.New("tenant ID is empty")
	}
	ids := strings.Split(orgID, string(querySeparator))
	for _, id := range ids {
		if id == "" {
			return nil, fmt.Errorf("org ID %q has an empty tenant between '|' separators", orgID)
		}
		if err := Validate(id); err != nil {
			return nil, err
		}
	}
	sort.Strings(ids)
	out := ids[:1]
	for _, id := range ids[1:] {
		if id != out[len(out)-1] {
			out = append(out, id)
		}
	}
	return out, nil
}

// JoinQueryIDs is the inverse of ParseQueryIDs.
func JoinQueryIDs(ids []string) string {
	return strings.Join(ids, string(querySeparator))
}

type ctxKey struct{}

// WithID returns a context carrying the org ID (a single tenant, or "a|b"
// for a multi-tenant query).
func WithID(ctx context.Context, orgID string) context.Context {
	return context.WithValue(ctx, ctxKey{}, orgID)
}

// FromContext returns the org ID stored by WithID.
func FromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(ctxKey{}).(string)
	return id, ok && id != ""
}

// IDsFromContext returns the tenants of the org ID stored by WithID.
func IDsFromContext(ctx context.Context) ([]string, error) {
	orgID, ok := FromContext(ctx)
	if !ok {
		return nil, ErrNoOrgID
	}
	return ParseQueryIDs(orgID)
}

// Resolver turns a request's header into a tenant.
type Resolver struct {
	// Default is the tenant of requests without the header; "" means
	// DefaultID. Ignored when Required is set.
	Default string
	// Required refuses requests without the header (401, "no org id"),
	// as Loki does with auth enabled.
	Required bool
}

func (r Resolver) orgID(req *http.Request) (string, error) {
	return r.resolve(req.Header.Get(Header))
}

// resolve applies the resolver's rules to the header's value, "" when the
// request had none.
func (r Resolver) resolve(header string) (string, error) {
	id := strings.TrimSpace(header)
	if id != "" {
		return id, nil
	}
	if r.Required {
		return "", ErrNoOrgID
	}
	if r.Default != "" {
		return r.Default, nil
	}
	return DefaultID, nil
}

// Single returns the one tenant a write request acts for.
func (r Resolver) Single(req *http.Request) (string, error) {
	id, err := r.orgID(req)
	if err != nil {
		return "", err
	}
	if err := Validate(id); err != nil {
		return "", err
	}
	return id, nil
}

// Multi returns the tenants a query request reads from.
func (r Resolver) Multi(req *http.Request) ([]string, error) {
	id, err := r.orgID(req)
	if err != nil {
		return nil, err
	}
	return ParseQueryIDs(id)
}

// Middleware resolves the single tenant of a write route and stores it in
// the request context; a missing required header gets 401, an invalid ID
// (including "a|b") gets 400.
func (r Resolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id, err := r.Single(req)
		if err != nil {
			writeError(w, err)
			return
		}
		next.ServeHTTP(w, req.WithContext(WithID(req.Context(), id)))
	})
}

// QueryMiddleware is Middleware for read routes, which accept "a|b". The
// context carries the normalised org ID (sorted, deduplicated).
func (r Resolver) QueryMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ids, err := r.Multi(req)
		if err != nil {
			writeError(w, err)
			return
		}
		next.ServeHTTP(w, req.WithContext(WithID(req.Context(), JoinQueryIDs(ids))))
	})
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	if errors.Is(err, ErrNoOrgID) {
		code = http.StatusUnauthorized
	}
	http.Error(w, err.Error(), code)
}
