// Package auth decides whether a request may run, for which tenant, and
// whether the server can afford it now.
//
// It has three parts that one Guard puts in front of the HTTP mux and the
// gRPC server:
//
//   - Authentication: API tokens ("lsk_..." strings) with scopes (push,
//     query, admin), bound to a tenant, kept as SHA-256 digests in a JSON
//     file (TokenFile) that the CLI and the admin API edit and the server
//     rereads when it changes. With no tokens, or with auth turned off, the
//     server runs in open mode, where the X-Scope-OrgID header alone names
//     the tenant, and says so in its log.
//   - Tenant resolution: the authenticated tenant wins; X-Scope-OrgID is
//     honoured only when it names a tenant the token may act for. The
//     tenant goes into the request context (tenant.WithID) and replaces the
//     header, so handlers that read either see the same answer.
//   - Overload protection: a per-tenant limit on concurrent queries with a
//     short queue (429 past it), a global limit on requests in flight and a
//     live-heap high-water mark (503, load shedding), and a per-tenant
//     circuit breaker that sheds queries quickly (503) while they keep
//     failing. One tenant's flood meets its own limits, not the others'.
package auth
