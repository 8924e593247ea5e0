// Package ingest serves Loki's push API, POST /loki/api/v1/push, in front of
// an Appender (the store): it decodes protobuf+snappy and JSON bodies
// (optionally gzip or deflate encoded) within fixed memory bounds, validates
// streams and entries against per-tenant Limits the way Loki's distributor
// does, appends the valid rest of a push, and answers only after the append
// is durable.
//
// Memory ownership. Decoding does not copy lines: chunk.Entry.Line and the
// strings of structured metadata point into the decoded body, which is never
// mutated after decoding. By default that buffer is allocated per request
// and never reused, so an Appender may keep what points into it; with
// Config.ReuseBuffers it goes back to a pool once Append returns, which is
// only safe for an Appender that copies what it keeps. Stream label sets
// come from a cache shared by all requests and must be treated as read-only.
package ingest
