package ingest

import (
	"time"

	"github.com/logsift/logsift/pkg/servicename"
)

// Limits are the per-tenant rules a push must follow. Field names in YAML
// are Loki's limits_config names where Loki has the same limit, so a Loki
// operator finds them where they expect. A zero numeric limit means
// "unlimited" unless the field says otherwise.
type Limits struct {
	// IngestionRateMB is the sustained rate, in MiB per second, of line plus
	// structured metadata bytes a tenant may push. Pushes above it get 429
	// with Retry-After. 0 disables rate limiting.
	IngestionRateMB float64 `yaml:"ingestion_rate_mb"`
	// IngestionBurstSizeMB is how many MiB may arrive at once above the
	// sustained rate; a single push larger than the burst can never pass.
	IngestionBurstSizeMB float64 `yaml:"ingestion_burst_size_mb"`

	// MaxLabelNamesPerSeries caps the labels of one stream. Labels are for
	// low-cardinality identity; more belongs in structured metadata.
	MaxLabelNamesPerSeries int `yaml:"max_label_names_per_series"`
	// MaxLabelNameLength caps one label name in bytes.
	MaxLabelNameLength int `yaml:"max_label_name_length"`
	// MaxLabelValueLength caps one label value in bytes.
	MaxLabelValueLength int `yaml:"max_label_value_length"`

	// MaxLineSize caps one line in bytes. Longer lines are dropped (reason
	// line_too_long) unless MaxLineSizeTruncate is set.
	MaxLineSize int `yaml:"max_line_size"`
	// MaxLineSizeTruncate keeps the first MaxLineSize bytes of a longer line
	// instead of dropping it.
	MaxLineSizeTruncate bool `yaml:"max_line_size_truncate"`

	// MaxStructuredMetadataSize caps the summed name and value bytes of one
	// entry's structured metadata.
	MaxStructuredMetadataSize int `yaml:"max_structured_metadata_size"`
	// MaxStructuredMetadataEntries caps the number of structured metadata
	// pairs of one entry.
	MaxStructuredMetadataEntries int `yaml:"max_structured_metadata_entries_count"`

	// MaxStreamsPerPush caps the streams of one push request; streams past
	// the limit are dropped (reason too_many_streams).
	MaxStreamsPerPush int `yaml:"max_streams_per_push"`

	// CreationGracePeriod, when positive, drops entries whose timestamp is
	// more than this far in the future of the server's clock (reason
	// too_far_in_future). The default 0 accepts any timestamp up to the
	// int64 nanosecond range (year 2262). Old timestamps are always
	// accepted: importing years-old logs is normal here, unlike in Loki.
	CreationGracePeriod time.Duration `yaml:"creation_grace_period"`

	// DiscoverLogLevels adds structured metadata detected_level to every
	// entry that has no such label or metadata yet, as Loki's option of the
	// same name does (see pkg/levels), so Grafana can colour lines and Logs
	// Drilldown can group by level without parsing.
	DiscoverLogLevels bool `yaml:"discover_log_levels"`

	// DiscoverServiceName lists the labels, in order, from which a stream
	// without a service_name label gets one, as Loki's option of the same
	// name does; a stream with none of them gets "unknown_service". Logs
	// Drilldown groups streams by service_name. An empty list turns it off.
	DiscoverServiceName []string `yaml:"discover_service_name"`
}

// DefaultServiceNameLabels is Loki's default discover_service_name list
// (servicename.DefaultLabels, shared with the agent).
var DefaultServiceNameLabels = servicename.DefaultLabels

// DefaultLimits returns the limits used for tenants without overrides. They
// are generous enough for a single-user box and still stop absurd input.
func DefaultLimits() Limits {
	return Limits{
		IngestionRateMB:              256,
		IngestionBurstSizeMB:         512,
		MaxLabelNamesPerSeries:       32,
		MaxLabelNameLength:           1024,
		MaxLabelValueLength:          2048,
		MaxLineSize:                  256 << 10,
		MaxStructuredMetadataSize:    64 << 10,
		MaxStructuredMetadataEntries: 128,
		MaxStreamsPerPush:            10000,
		DiscoverLogLevels:            true,
		DiscoverServiceName:          DefaultServiceNameLabels,
	}
}

// UnmarshalYAML starts from DefaultLimits, so a YAML block (the defaults or a
// tenant's override) needs to name only the fields it changes. The signature
// is the one gopkg.in/yaml.v2, yaml.v3 and goccy/go-yaml all call.
func (l *Limits) UnmarshalYAML(unmarshal func(any) error) error {
	*l = DefaultLimits()
	type plain Limits // without the method, to avoid recursion
	return unmarshal((*plain)(l))
}

// Overrides maps a tenant ID to its complete limits. Tenants not in the map
// get the handler's default limits (Config.Limits). A tenant block read
// from YAML starts from DefaultLimits(), not from Config.Limits, so it
// should name every field that differs from the built-in defaults.
type Overrides map[string]Limits
