package auth_test

import (
	"context"
	"encoding/base64"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/logsift/logsift/pkg/auth"
	"github.com/logsift/logsift/pkg/tenant"
)

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *fakeStream) Context() context.Context { return s.ctx }

func TestGRPCInterceptors(t *testing.T) {
	h, s := newHarness(t, auth.Options{}, echo,
		auth.TokenSpec{Tenant: "edge", Scopes: []auth.Scope{auth.ScopePush}},
		auth.TokenSpec{Tenant: "edge", Scopes: []auth.Scope{auth.ScopeQuery}})
	pushTok, queryTok := s[0], s[1]
	stream := h.guard.StreamServerInterceptor()
	const push = "/logsift.v1.ChunkService/Push"

	call := func(method string, md metadata.MD) (string, metadata.MD, error) {
		var gotTenant string
		var gotMD metadata.MD
		ctx := metadata.NewIncomingContext(context.Background(), md)
		err := stream(nil, &fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: method}, func(srv any, ss grpc.ServerStream) error {
			gotTenant, _ = tenant.FromContext(ss.Context())
			gotMD, _ = metadata.FromIncomingContext(ss.Context())
			return nil
		})
		return gotTenant, gotMD, err
	}
	if _, _, err := call(push, metadata.Pairs()); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	got, md, err := call(push, metadata.Pairs("authorization", "Bearer "+pushTok))
	if err != nil || got != "edge" {
		t.Fatalf("push token: %q %v", got, err)
	}
	if len(md.Get("authorization")) != 0 || md.Get("x-scope-orgid")[0] != "edge" {
		t.Fatalf("metadata passed on: %v", md)
	}
	basic := base64.StdEncoding.EncodeToString([]byte("user:" + pushTok))
	if got, _, err := call(push, metadata.Pairs("authorization", "Basic "+basic)); err != nil || got != "edge" {
		t.Fatalf("basic auth: %q %v", got, err)
	}
	if _, _, err := call(push, metadata.Pairs("authorization", "Bearer "+queryTok)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("query token on push: %v", err)
	}
	if _, _, err := call(push, metadata.Pairs("authorization", "Bearer "+pushTok, "x-scope-orgid", "other")); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("other tenant: %v", err)
	}
	if _, _, err := call("/some.Unknown/Method", metadata.Pairs("authorization", "Bearer "+pushTok)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("unclassified method: %v", err)
	}
	if _, _, err := call("/grpc.health.v1.Health/Check", metadata.Pairs()); err != nil {
		t.Fatalf("health check: %v", err)
	}

	unary := h.guard.UnaryServerInterceptor()
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+queryTok))
	resp, err := unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/logsift.v1.QueryService/Query"}, func(ctx context.Context, req any) (any, error) {
		id, _ := tenant.FromContext(ctx)
		return id, nil
	})
	if err != nil || resp != "edge" {
		t.Fatalf("unary query: %v %v", resp, err)
	}
}
