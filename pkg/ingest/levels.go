package ingest

import (
	"github.com/logsift/logsift/pkg/labels"
	"github.com/logsift/logsift/pkg/levels"
	"github.com/logsift/logsift/pkg/servicename"
	"github.com/logsift/logsift/pkg/store"
)

// discoverLevels adds structured metadata detected_level to entries that
// carry no level of their own (limits.discover_log_levels). It runs after
// the rate limit, so the added bytes are not charged to the client.
func discoverLevels(streams []store.Stream) {
	for i := range streams {
		ls := streams[i].Labels
		if ls.Has(levels.Label) {
			continue
		}
		es := streams[i].Entries
		for j := range es {
			if !es[j].Metadata.Has(levels.Label) {
				es[j].Metadata = withLevel(es[j].Metadata, levels.Detect(ls, es[j].Metadata, es[j].Line))
			}
		}
	}
}

// ServiceNameLabel is the label Logs Drilldown groups streams by.
const ServiceNameLabel = servicename.Label

// discoverServiceNames gives streams without a service_name label one
// taken from the first of from that they have, or "unknown_service"
// (package servicename, which the agent shares). The stream's label set is
// shared through the label cache, so a new set is built rather than the
// old one changed.
func discoverServiceNames(streams []store.Stream, from []string) {
	for i := range streams {
		streams[i].Labels = servicename.Add(streams[i].Labels, from, servicename.Unknown)
	}
}

// levelOnly holds one shared, read-only metadata set per level, so that the
// common entry without metadata of its own gets its level without an
// allocation.
var levelOnly = func() map[string]labels.Labels {
	m := map[string]labels.Labels{}
	for _, l := range levels.All {
		m[l] = labels.Labels{{Name: levels.Label, Value: l}}
	}
	return m
}()

// withLevel adds detected_level to sorted metadata, keeping it sorted.
func withLevel(md labels.Labels, level string) labels.Labels {
	if len(md) == 0 {
		return levelOnly[level]
	}
	out := make(labels.Labels, 0, len(md)+1)
	i := 0
	for i < len(md) && md[i].Name < levels.Label {
		out = append(out, md[i])
		i++
	}
	out = append(out, labels.Label{Name: levels.Label, Value: level})
	return append(out, md[i:]...)
}
