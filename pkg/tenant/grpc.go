package tenant

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The gRPC services read the tenant from the call's "x-scope-orgid"
// metadata under the same rules as the HTTP header, and answer with the
// gRPC codes of the HTTP statuses: Unauthenticated for a missing required
// ID (401), InvalidArgument for a bad one (400).

func (r Resolver) orgIDGRPC(ctx context.Context) (string, error) {
	var header string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(strings.ToLower(Header)); len(v) > 0 {
			header = v[0]
		}
	}
	return r.resolve(header)
}

// SingleGRPC returns the one tenant a gRPC call that writes acts for.
func (r Resolver) SingleGRPC(ctx context.Context) (string, error) {
	id, err := r.orgIDGRPC(ctx)
	if err == nil {
		err = Validate(id)
	}
	if err != nil {
		return "", grpcStatus(err)
	}
	return id, nil
}

// MultiGRPC returns the tenants a gRPC call that reads acts for ("a|b"
// allowed), sorted and deduplicated.
func (r Resolver) MultiGRPC(ctx context.Context) ([]string, error) {
	id, err := r.orgIDGRPC(ctx)
	if err != nil {
		return nil, grpcStatus(err)
	}
	ids, err := ParseQueryIDs(id)
	if err != nil {
		return nil, grpcStatus(err)
	}
	return ids, nil
}

func grpcStatus(err error) error {
	if errors.Is(err, ErrNoOrgID) {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	return status.Error(codes.InvalidArgument, err.Error())
}
