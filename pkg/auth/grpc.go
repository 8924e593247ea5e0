package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/pkg/tenant"
)

// gRPC metadata keys: gRPC lowercases header names.
const (
	mdAuthorization = "authorization"
	mdOrgID         = "x-scope-orgid"
)

// DefaultGRPCRoutes classify logsift's gRPC methods (Route.Path is the
// full method name, "/package.Service/Method", or a "/package.Service/"
// prefix). The agent's chunk stream is long-lived and has its own rate
// limits, so it is not counted as in flight.
func DefaultGRPCRoutes() []Route {
	return []Route{
		{Path: "/grpc.health.v1.Health/", Class: ClassExempt},
		{Path: "/logsift.v1.ChunkService/Push", Scope: ScopePush, Class: ClassExempt},
		{Path: "/logsift.v1.QueryService/", Scope: ScopeQuery, Multi: true, Class: ClassQuery},
		// Event streams last as long as their client, like live tail.
		{Path: "/logsift.v1.EventService/", Scope: ScopeQuery, Multi: true, Class: ClassStream},
		// Reading workspaces is a query; deleting one deletes data (admin);
		// the rest (create, import runs) is what an importing agent does.
		{Path: "/logsift.v1.WorkspaceService/List", Scope: ScopeQuery, Class: ClassQuery},
		{Path: "/logsift.v1.WorkspaceService/Get", Scope: ScopeQuery, Class: ClassQuery},
		{Path: "/logsift.v1.WorkspaceService/GetRun", Scope: ScopeQuery, Class: ClassQuery},
		{Path: "/logsift.v1.WorkspaceService/Delete", Scope: ScopeAdmin, Class: ClassExempt},
		{Path: "/logsift.v1.WorkspaceService/", Scope: ScopePush},
	}
}

// UnaryServerInterceptor authenticates unary calls and admits them within
// the overload limits.
func (g *Guard) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, done, err := g.guardGRPC(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		resp, err := handler(ctx, req)
		done(grpcOutcome(err))
		return resp, err
	}
}

// StreamServerInterceptor authenticates streams and admits them within
// the overload limits; the handler's stream context carries the tenant
// (tenant.FromContext) and the Principal.
func (g *Guard) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, done, err := g.guardGRPC(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		err = handler(srv, &guardedStream{ServerStream: ss, ctx: ctx})
		done(grpcOutcome(err))
		return err
	}
}

type guardedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *guardedStream) Context() context.Context { return s.ctx }

func (g *Guard) guardGRPC(ctx context.Context, method string) (context.Context, func(outcome), error) {
	rt := routeFor(g.grpcRoutes, "", method)
	if rt.Scope == "" {
		return ctx, nopDone, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	secret, has := grpcCredential(md)
	var org string
	if v := md.Get(mdOrgID); len(v) > 0 {
		org = strings.TrimSpace(v[0])
	}
	p, err := g.authenticate(secret, has, org, rt)
	if err != nil {
		code := http.StatusBadRequest
		var re *requestError
		if errors.As(err, &re) {
			code = re.code
		}
		switch code {
		case http.StatusUnauthorized:
			g.metrics.authResult("unauthenticated")
		case http.StatusForbidden:
			g.metrics.authResult("forbidden")
		default:
			g.metrics.authResult("bad_request")
		}
		g.logRefusal(ctx, code, err.Error(), method, "grpc", p)
		return nil, nil, status.Error(grpcCode(code), err.Error())
	}
	if p.Open {
		g.metrics.authResult("open")
	} else {
		g.metrics.authResult("ok")
	}
	annotateSpan(ctx, p)
	md = md.Copy()
	md.Set(mdOrgID, p.OrgID)
	md.Delete(mdAuthorization)
	ctx = metadata.NewIncomingContext(tenant.WithID(WithPrincipal(withActor(ctx, p), p), p.OrgID), md)
	done, err := g.admit(ctx, rt, p.OrgID)
	if err != nil {
		code := http.StatusServiceUnavailable
		var oe *overloadError
		if errors.As(err, &oe) {
			code = oe.code
		}
		return nil, nil, status.Error(grpcCode(code), err.Error())
	}
	return ctx, done, nil
}

// grpcCredential reads the token from "authorization" metadata, bearer or
// basic as over HTTP.
func grpcCredential(md metadata.MD) (string, bool) {
	v := md.Get(mdAuthorization)
	if len(v) == 0 {
		return "", false
	}
	scheme, rest, _ := strings.Cut(v[0], " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return rest, true
	case strings.EqualFold(scheme, "Basic"):
		if raw, err := base64.StdEncoding.DecodeString(rest); err == nil {
			if _, pw, ok := strings.Cut(string(raw), ":"); ok {
				return pw, true
			}
		}
	}
	return "", true
}

func grpcCode(httpCode int) codes.Code {
	switch httpCode {
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case 499:
		return codes.Canceled
	}
	return codes.InvalidArgument
}

func grpcOutcome(err error) outcome {
	switch status.Code(err) {
	case codes.OK, codes.InvalidArgument, codes.NotFound, codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition, codes.OutOfRange:
		return outcomeSuccess
	case codes.Canceled:
		return outcomeNeutral
	}
	return outcomeFailure
}
