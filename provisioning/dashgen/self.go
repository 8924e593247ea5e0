package dashgen

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Self is "logsift / logsift": the server's and agents' own /metrics
// through Prometheus. Histograms registered with VictoriaMetrics'
// GetOrCreateHistogram export vmrange buckets, which PromQL's
// histogram_quantile cannot read, so their panels show averages
// (_sum / _count); the push latency is a Prometheus histogram and shows
// quantiles.
func Self() *dashboard.DashboardBuilder {
	avg := func(name, by string) string {
		return `sum by (` + by + `) (rate(` + name + `_sum[$__rate_interval])) / sum by (` + by + `) (rate(` + name + `_count[$__rate_interval]))`
	}
	return base("logsift-self", "logsift / logsift",
		"The server and its agents from their own /metrics: ingest and query rates and latencies, bytes written to the store, cache hit rate, and how far agents are behind.").
		Time("now-1h", "now").
		Refresh("30s").
		WithRow(dashboard.NewRowBuilder("Ingest")).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Lines ingested").
			Description("Lines per second through the Loki push API and in agent chunks.").
			GridPos(grid(8, 8)).Unit("short").
			Legend(legendList()).
			WithTarget(prom("A", `sum(rate(logsift_ingest_received_lines_total[$__rate_interval]))`, "Loki push")).
			WithTarget(prom("B", `sum(rate(logsift_ingest_chunk_lines_total[$__rate_interval]))`, "agent chunks"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Bytes ingested").
			Description("Line bytes per second (push) and compressed chunk bytes per second (agents).").
			GridPos(grid(8, 8)).Unit("Bps").
			Legend(legendList()).
			WithTarget(prom("A", `sum(rate(logsift_ingest_received_bytes_total[$__rate_interval]))`, "Loki push (raw)")).
			WithTarget(prom("B", `sum(rate(logsift_ingest_chunk_bytes_total[$__rate_interval]))`, "agent chunks (compressed)"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Ingest latency").
			Description("Push request quantiles; average time to make an agent chunk durable; average WAL write.").
			GridPos(grid(8, 8)).Unit("s").
			Legend(legendList()).
			WithTarget(prom("A", `histogram_quantile(0.5, sum by (le) (rate(logsift_ingest_request_duration_seconds_bucket[$__rate_interval])))`, "push p50")).
			WithTarget(prom("B", `histogram_quantile(0.99, sum by (le) (rate(logsift_ingest_request_duration_seconds_bucket[$__rate_interval])))`, "push p99")).
			WithTarget(prom("C", avg("logsift_ingest_chunk_duration_seconds", "job"), "chunk avg")).
			WithTarget(prom("D", avg("logsift_wal_write_duration_seconds", "job"), "WAL write avg"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Ingest rejections").
			Description("Entries dropped at ingest by reason, and agent chunks rejected as invalid (what the alert rule \"Ingest rejections\" watches).").
			GridPos(grid(12, 7)).Unit("short").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (reason) (rate(logsift_ingest_discarded_lines_total[$__rate_interval]))`, "{{reason}}")).
			WithTarget(prom("B", `sum(rate(logsift_ingest_chunks_total{status="rejected"}[$__rate_interval]))`, "chunks rejected"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Push requests by status").
			GridPos(grid(12, 7)).Unit("reqps").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (status) (rate(logsift_ingest_requests_total[$__rate_interval]))`, "{{status}}"))).
		WithRow(dashboard.NewRowBuilder("Queries")).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Query requests").
			Description("Requests per second to the Loki query API, by route.").
			GridPos(grid(8, 8)).Unit("reqps").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (route) (rate(logsift_http_requests_total{route=~"/loki/api/v1/(query|query_range|tail|series|labels|label/:name/values|index/.+|patterns|detected_.+)"}[$__rate_interval]))`, "{{route}}"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Query latency (average)").
			GridPos(grid(8, 8)).Unit("s").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (route) (rate(logsift_http_request_duration_seconds_sum{route=~"/loki/api/v1/query.*"}[$__rate_interval])) / sum by (route) (rate(logsift_http_request_duration_seconds_count{route=~"/loki/api/v1/query.*"}[$__rate_interval]))`, "{{route}}"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Failed requests").
			Description("Answers 4xx and 5xx by route and code.").
			GridPos(grid(8, 8)).Unit("reqps").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (route, code) (rate(logsift_http_requests_total{code=~"4..|5.."}[$__rate_interval]))`, "{{route}} {{code}}"))).
		WithRow(dashboard.NewRowBuilder("Store and cache")).
		WithPanel(stat.NewPanelBuilder().
			Title("Chunk bytes written since start").
			Description("Compressed chunk bytes the store wrote to its partitions since the server started (the server exports no gauge of its size on disk yet).").
			GridPos(grid(6, 7)).Unit("bytes").
			GraphMode(common.BigValueGraphModeArea).ReduceOptions(lastValue()).Orientation(common.VizOrientationAuto).
			WithTarget(prom("A", `sum(logsift_store_flushed_bytes_total)`, "written"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Store writes").
			Description("Chunk bytes flushed to partitions and lines appended to the WAL, per second.").
			GridPos(grid(6, 7)).Unit("Bps").
			Legend(legendList()).
			WithTarget(prom("A", `sum(rate(logsift_store_flushed_bytes_total[$__rate_interval]))`, "chunk bytes flushed")).
			WithTarget(prom("B", `sum(rate(logsift_store_appended_bytes_total[$__rate_interval]))`, "WAL bytes appended"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Query cache hit rate").
			Description("Share of cached time buckets served from the result cache, and hit rate per cache level.").
			GridPos(grid(6, 7)).Unit("percentunit").Min(0).Max(1).
			Legend(legendList()).
			WithTarget(prom("A", `sum(rate(logsift_query_cache_buckets_total{result="hit"}[$__rate_interval])) / sum(rate(logsift_query_cache_buckets_total{result=~"hit|miss|stale"}[$__rate_interval]))`, "buckets")).
			WithTarget(prom("B", `sum by (level) (rate(logsift_cache_requests_total{result="hit"}[$__rate_interval])) / sum by (level) (rate(logsift_cache_requests_total[$__rate_interval]))`, "{{level}}"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Server memory").
			GridPos(grid(6, 7)).Unit("bytes").
			Legend(legendList()).
			WithTarget(prom("A", `process_resident_memory_bytes{job="logsift"}`, "RSS")).
			WithTarget(prom("B", `go_memstats_heap_inuse_bytes{job="logsift"}`, "heap in use"))).
		WithRow(dashboard.NewRowBuilder("Agents")).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Agent lag").
			Description("Bytes written to followed files and not yet read, per agent.").
			GridPos(grid(8, 8)).Unit("bytes").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (instance) (logsift_agent_file_lag_bytes)`, "{{instance}}"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Agent spool backlog").
			Description("Chunks built and not yet acknowledged by the server, per agent.").
			GridPos(grid(8, 8)).Unit("bytes").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (instance) (logsift_agent_spool_bytes)`, "{{instance}}"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Agent acknowledgement latency (average)").
			Description("From a chunk entering the spool to the server's acknowledgement.").
			GridPos(grid(8, 8)).Unit("s").
			Legend(legendList()).
			WithTarget(prom("A", avg("logsift_agent_ack_latency_seconds", "instance"), "{{instance}}"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Agent chunks acknowledged").
			GridPos(grid(12, 7)).Unit("ops").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (instance, status) (rate(logsift_agent_chunks_acked_total[$__rate_interval]))`, "{{instance}} {{status}}"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Agent errors").
			Description("Failed streams and connections, chunks rejected by the server, read errors.").
			GridPos(grid(12, 7)).Unit("short").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (instance) (increase(logsift_agent_ship_errors_total[$__rate_interval]))`, "{{instance}} ship errors")).
			WithTarget(prom("B", `sum by (instance) (increase(logsift_agent_chunks_rejected_total[$__rate_interval]))`, "{{instance}} rejected")).
			WithTarget(prom("C", `sum by (instance) (increase(logsift_agent_read_errors_total[$__rate_interval]))`, "{{instance}} read errors")))
}
