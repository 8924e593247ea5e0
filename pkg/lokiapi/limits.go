package lokiapi

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/logsift/logsift/pkg/logql"
)

// Limits bound what one query may ask for. The YAML names are Loki's, so
// that a limits block copied from a Loki configuration means the same here.
//
// In the defaults a zero or negative value disables a limit. In a tenant's
// Overrides entry a zero value inherits the default and a negative value
// disables the limit for that tenant.
type Limits struct {
	// MaxEntriesPerQuery caps `limit` of log queries
	// (max_entries_limit_per_query).
	MaxEntriesPerQuery int `yaml:"max_entries_limit_per_query"`
	// QueryTimeout ends a query that runs longer.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// MaxQueryLength caps end-start of a query, and the range plus offset of
	// an instant metric query (max_query_length).
	MaxQueryLength time.Duration `yaml:"max_query_length"`
	// MaxQueryRange caps the [range] of a range aggregation
	// (max_query_range); off by default, as in Loki.
	MaxQueryRange time.Duration `yaml:"max_query_range"`
	// MaxQuerySeries caps the series of a metric query's result
	// (max_query_series).
	MaxQuerySeries int `yaml:"max_query_series"`
	// MaxQueryBytesRead caps the line bytes a query would read, as the
	// index estimates them before it runs (max_query_bytes_read).
	MaxQueryBytesRead Bytes `yaml:"max_query_bytes_read"`
	// VolumeMaxSeries caps the series index/volume and volume_range return
	// (volume_max_series); larger `limit`s are clamped to it.
	VolumeMaxSeries int `yaml:"volume_max_series"`
	// Overrides holds per-tenant limits, merged field by field over the
	// defaults above.
	Overrides map[string]Limits `yaml:"overrides"`
}

// DefaultLimits are Loki's defaults where Loki has one. Loki's
// max_query_length is 30d1h; max_query_bytes_read is off as in Loki.
func DefaultLimits() Limits {
	return Limits{
		MaxEntriesPerQuery: 5000,
		QueryTimeout:       time.Minute,
		MaxQueryLength:     721 * time.Hour,
		MaxQuerySeries:     500,
		VolumeMaxSeries:    1000,
	}
}

// ForTenant returns the limits that apply to a tenant, with its override
// merged in. The result has no Overrides and no negative values: a
// disabled limit is 0.
// ForTenants returns the strictest of the limits of several tenants: for
// each limit the smallest that is set (zero means unlimited).
func (l *Limits) ForTenants(ids []string) Limits {
	out := l.ForTenant(ids[0])
	for _, id := range ids[1:] {
		o := l.ForTenant(id)
		stricter(&out.MaxEntriesPerQuery, o.MaxEntriesPerQuery)
		stricter(&out.MaxQuerySeries, o.MaxQuerySeries)
		stricter(&out.VolumeMaxSeries, o.VolumeMaxSeries)
		stricter(&out.QueryTimeout, o.QueryTimeout)
		stricter(&out.MaxQueryLength, o.MaxQueryLength)
		stricter(&out.MaxQueryRange, o.MaxQueryRange)
		stricter(&out.MaxQueryBytesRead, o.MaxQueryBytesRead)
	}
	return out
}

func stricter[T int | time.Duration | Bytes](dst *T, v T) {
	if v > 0 && (*dst == 0 || v < *dst) {
		*dst = v
	}
}

func (l *Limits) ForTenant(id string) Limits {
	out := *l
	out.Overrides = nil
	if o, ok := l.Overrides[id]; ok {
		mergeInt(&out.MaxEntriesPerQuery, o.MaxEntriesPerQuery)
		mergeInt(&out.MaxQuerySeries, o.MaxQuerySeries)
		mergeInt(&out.VolumeMaxSeries, o.VolumeMaxSeries)
		mergeInt64((*int64)(&out.QueryTimeout), int64(o.QueryTimeout))
		mergeInt64((*int64)(&out.MaxQueryLength), int64(o.MaxQueryLength))
		mergeInt64((*int64)(&out.MaxQueryRange), int64(o.MaxQueryRange))
		mergeInt64((*int64)(&out.MaxQueryBytesRead), int64(o.MaxQueryBytesRead))
	}
	out.MaxEntriesPerQuery = max(out.MaxEntriesPerQuery, 0)
	out.MaxQuerySeries = max(out.MaxQuerySeries, 0)
	out.VolumeMaxSeries = max(out.VolumeMaxSeries, 0)
	out.QueryTimeout = max(out.QueryTimeout, 0)
	out.MaxQueryLength = max(out.MaxQueryLength, 0)
	out.MaxQueryRange = max(out.MaxQueryRange, 0)
	out.MaxQueryBytesRead = max(out.MaxQueryBytesRead, 0)
	return out
}

func mergeInt(dst *int, v int) {
	if v != 0 {
		*dst = v
	}
}

func mergeInt64(dst *int64, v int64) {
	if v != 0 {
		*dst = v
	}
}

// Bytes is a byte count that configuration files may write as a number or
// with a unit ("10GB", "512MiB").
type Bytes int64

// UnmarshalText reads a byte count with an optional unit.
func (b *Bytes) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var n uint64
	var err error
	switch {
	case s == "":
		n = 0
	case strings.Trim(s, "0123456789") == "":
		n, err = strconv.ParseUint(s, 10, 64)
	default:
		n, err = logql.ParseBytes(s)
	}
	if err != nil {
		return fmt.Errorf("invalid byte size %q: use a number of bytes or a size with a unit such as 10GB: %w", text, err)
	}
	*b = Bytes(min(n, 1<<62))
	if neg {
		*b = -*b
	}
	return nil
}

// MarshalText writes the count with the largest exact unit.
func (b Bytes) MarshalText() ([]byte, error) {
	if b < 0 {
		return []byte("-" + logql.FormatBytes(uint64(-b))), nil
	}
	return []byte(logql.FormatBytes(uint64(b))), nil
}

// limitError is a query refused by a limit: 400 with a message that names
// the setting to change.
func limitError(format string, args ...any) error {
	return &paramError{msg: fmt.Sprintf(format, args...)}
}

// checkLength enforces max_query_length on a range.
func (l *Limits) checkLength(length time.Duration) error {
	if l.MaxQueryLength > 0 && length > l.MaxQueryLength {
		return limitError("the query time range exceeds the limit (query length: %s, limit: %s); shorten the time range or raise query.max_query_length",
			logql.FormatDuration(length), logql.FormatDuration(l.MaxQueryLength))
	}
	return nil
}

// checkRangeInterval enforces max_query_range on every [range] of a query.
func (l *Limits) checkRangeInterval(expr logql.Expr) error {
	if l.MaxQueryRange <= 0 {
		return nil
	}
	var err error
	logql.Walk(expr, func(n logql.Node) bool {
		if r, ok := n.(*logql.LogRangeExpr); ok && r.Interval > l.MaxQueryRange && err == nil {
			err = limitError("the range [%s] of %s exceeds the limit of %s; use a shorter range or raise query.max_query_range",
				logql.FormatDuration(r.Interval), r, logql.FormatDuration(l.MaxQueryRange))
		}
		return err == nil
	})
	return err
}

// checkBytes enforces max_query_bytes_read on the index's estimate.
func (l *Limits) checkBytes(estimate int64) error {
	if l.MaxQueryBytesRead > 0 && estimate > int64(l.MaxQueryBytesRead) {
		return limitError("the query would read too many bytes (query: %s, limit: %s); add more specific stream selectors, shorten the time range or raise query.max_query_bytes_read",
			humanBytes(estimate), humanBytes(int64(l.MaxQueryBytesRead)))
	}
	return nil
}

// humanBytes prints a byte count for people: 1.5GiB, 730B.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	v := float64(n)
	i := -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + string("KMGTPE"[i]) + "iB"
}
