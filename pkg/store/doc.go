// Package store is logsift's embedded storage engine: a write-ahead log for
// pushed entries, in-memory head chunks per stream, and time partitions on
// local disk holding chunk segments and their index.
package store
