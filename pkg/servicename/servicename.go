// Package servicename gives a stream the service_name label the way Loki's
// discover_service_name does: a stream without one takes the value of the
// first label it has from a list (service, app, job, ...), else a
// fallback. Logs Drilldown groups streams by service_name, and logsift's
// provisioned dashboards and alert rules do too, so every stream should
// carry one whichever way it arrived: pushed through Loki's API (pkg/ingest)
// or built into chunks by logsift-agent, which the server stores as sent.
package servicename

import "github.com/logsift/logsift/pkg/labels"

// Label is the label Logs Drilldown groups streams by.
const Label = "service_name"

// Unknown is Loki's service_name for a stream with none of the labels.
const Unknown = "unknown_service"

// DefaultLabels is Loki's default discover_service_name list, in the order
// the labels are tried.
var DefaultLabels = []string{"service", "app", "application", "app_name", "name", "app_kubernetes_io_name", "container", "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name"}

// Discover returns the service name of a stream: its service_name label,
// else the value of the first label of from it has, else fallback.
func Discover(ls labels.Labels, from []string, fallback string) string {
	if v := ls.Get(Label); v != "" {
		return v
	}
	for _, l := range from {
		if v := ls.Get(l); v != "" {
			return v
		}
	}
	return fallback
}

// Add returns ls with a service_name label when it has none: the first
// label of from it has, else fallback (no label when fallback is empty).
// An empty from turns discovery off, as in Loki. ls is returned as is when
// nothing changes and is never modified: label sets are shared (caches,
// builders), so a new sorted set is built instead.
func Add(ls labels.Labels, from []string, fallback string) labels.Labels {
	if len(from) == 0 || ls.Has(Label) {
		return ls
	}
	name := Discover(ls, from, fallback)
	if name == "" {
		return ls
	}
	out := make(labels.Labels, 0, len(ls)+1)
	out = append(out, ls...)
	return append(out, labels.Label{Name: Label, Value: name}).Sort()
}
