package ship

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RefusedError is the server refusing the agent's credentials: a wrong,
// unknown or revoked token, or none where one is required (HTTP 401, gRPC
// Unauthenticated), or a token without the scope the call needs (403,
// PermissionDenied). Retrying does not help until someone changes the
// token or the server's tokens, so an import stops on it; the tailing
// agent keeps its chunks and retries, since an operator may fix the
// server's side.
type RefusedError struct {
	// Forbidden is 403/PermissionDenied: the token is known but lacks a
	// scope or tenant; otherwise it is 401/Unauthenticated.
	Forbidden bool
	// HasToken says whether the agent sent a token at all.
	HasToken bool
	// Detail is the server's own message.
	Detail string
}

func (e *RefusedError) Error() string {
	switch {
	case !e.Forbidden && strings.Contains(strings.ToLower(e.Detail), "no org id"):
		// The server's tenant resolver refuses a call without
		// X-Scope-OrgID with the same code as a missing token.
		return fmt.Sprintf("the server requires a tenant and none was sent (401/Unauthenticated: %s): set output.tenant", e.Detail)
	case e.Forbidden:
		return fmt.Sprintf("the server refused the token for this call (403/PermissionDenied: %s): the token needs the push scope for the tenant it sends to", e.Detail)
	case !e.HasToken:
		return fmt.Sprintf("the server requires an API token and none was sent (401/Unauthenticated: %s): set output.token_file (or --token-file, --token, LOGSIFT_TOKEN for import)", e.Detail)
	}
	return fmt.Sprintf("the server refused the token (401/Unauthenticated: %s): check output.token or output.token_file (or --token, --token-file, LOGSIFT_TOKEN for import); an admin creates tokens with `logsift token create --scope push`", e.Detail)
}

// RefusedFromGRPC returns the RefusedError an RPC error stands for, or nil
// when it is not a refusal of credentials.
func RefusedFromGRPC(err error, hasToken bool) *RefusedError {
	if err == nil {
		return nil
	}
	// The status itself, not status.FromError, whose message of a wrapped
	// status is the whole wrapping text.
	var gs interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &gs) || gs.GRPCStatus() == nil {
		return nil
	}
	st := gs.GRPCStatus()
	switch st.Code() {
	case codes.Unauthenticated:
		return &RefusedError{HasToken: hasToken, Detail: st.Message()}
	case codes.PermissionDenied:
		return &RefusedError{Forbidden: true, HasToken: hasToken, Detail: st.Message()}
	}
	return nil
}

// bearerCreds sends the token as "authorization: Bearer <token>" metadata
// on every RPC, streams included. It does not require transport security:
// like Promtail, Alloy and Loki's clients, the agent lets an operator send
// a token in plaintext (to a server on the same host, behind a TLS
// terminating proxy, ...); the agent warns once when the address is not a
// loopback address (see PlaintextRisk).
type bearerCreds struct{ token string }

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (bearerCreds) RequireTransportSecurity() bool { return false }

// bearerTransport adds "Authorization: Bearer <token>" to every request
// that has no Authorization header of its own.
type bearerTransport struct {
	base  http.RoundTripper
	token string
}

func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") != "" {
		return t.base.RoundTrip(req)
	}
	// A RoundTripper must not change the caller's request.
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(r)
}

// PlaintextRisk reports whether sending a token to address without TLS
// exposes it on a network: address is host:port or a URL; loopback
// addresses ("localhost", 127.0.0.0/8, ::1) are safe, and so are Unix
// sockets.
func PlaintextRisk(address string) bool {
	host := address
	if strings.Contains(address, "://") {
		u, err := url.Parse(address)
		if err != nil {
			return true
		}
		if u.Scheme == "unix" {
			return false
		}
		host = u.Host
		if host == "" {
			// gRPC targets: dns:///host:port, passthrough:///host:port.
			host = strings.TrimPrefix(u.Path, "/")
		}
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return !ip.IsLoopback()
	}
	return true
}
