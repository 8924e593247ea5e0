package tenant

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestResolverGRPC(t *testing.T) {
	call := func(orgID string) context.Context {
		if orgID == "" {
			return context.Background()
		}
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs("X-Scope-OrgID", orgID))
	}
	for _, c := range []struct {
		r      Resolver
		orgID  string
		single string
		multi  []string
		code   codes.Code // of Single; Multi's is the same except for "a|b"
	}{
		{Resolver{}, "", DefaultID, []string{DefaultID}, codes.OK},
		{Resolver{Default: "ops"}, "", "ops", []string{"ops"}, codes.OK},
		{Resolver{Required: true}, "", "", nil, codes.Unauthenticated},
		{Resolver{Required: true}, " team-a ", "team-a", []string{"team-a"}, codes.OK},
		{Resolver{}, "b|a|b", "", []string{"a", "b"}, codes.InvalidArgument},
		{Resolver{}, "bad tenant!", "", nil, codes.InvalidArgument},
	} {
		got, err := c.r.SingleGRPC(call(c.orgID))
		if status.Code(err) != c.code || got != c.single {
			t.Errorf("%+v SingleGRPC(%q) = %q, %v; want %q, %v", c.r, c.orgID, got, err, c.single, c.code)
		}
		ids, err := c.r.MultiGRPC(call(c.orgID))
		want := c.code
		if c.multi != nil {
			want = codes.OK
		}
		if status.Code(err) != want || !slices.Equal(ids, c.multi) {
			t.Errorf("%+v MultiGRPC(%q) = %v, %v; want %v, %v", c.r, c.orgID, ids, err, c.multi, want)
		}
	}
}
