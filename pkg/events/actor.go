package events

import "context"

type actorKey struct{}

// WithActor returns a context that names who acts (a client address, a
// token name); events published on behalf of the request carry it, and
// the audit log records it.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFromContext returns the actor stored by WithActor, or "".
func ActorFromContext(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}
