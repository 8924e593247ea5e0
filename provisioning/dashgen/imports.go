package dashgen

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Imports is "logsift / Imports": import runs as the server's event bus
// counts them (logsift_events_total, from /metrics through Prometheus),
// the chunk throughput that imports and agents produce, failures, and the
// lines each workspace holds (from logsift itself).
//
// Per-run progress (files and bytes done of a running import) travels only
// on the events stream (/api/v1/events, server-sent events), which no
// Grafana panel reads; the panels here show what /metrics and the stored
// lines can honestly say.
func Imports() *dashboard.DashboardBuilder {
	importTypes := `type=~"import\\.(started|completed|failed|cancelled)"`
	return base("logsift-imports", "logsift / Imports",
		"Workspace imports: runs started, completed and failed (server events, via Prometheus), chunk throughput and rejections while bundles arrive, and the lines stored per workspace.").
		Time("now-6h", "now").
		Refresh("30s").
		WithRow(dashboard.NewRowBuilder("Import runs")).
		WithPanel(stat.NewPanelBuilder().
			Title("Import runs in the time range").
			Description("Import events the server published (logsift_events_total): runs started, completed, failed and cancelled.").
			GridPos(grid(12, 5)).Unit("short").
			GraphMode(common.BigValueGraphModeNone).ReduceOptions(lastValue()).Orientation(common.VizOrientationAuto).
			TextMode(common.BigValueTextModeValueAndName).
			WithTarget(promInstant("A", `sum by (type) (increase(logsift_events_total{`+importTypes+`}[$__range]))`, "{{type}}"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Import progress reports").
			Description("Progress events per second (an importing agent reports every few seconds), and run starts and ends.").
			GridPos(grid(12, 5)).Unit("ops").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (type) (rate(logsift_events_total{type=~"import\\..+"}[$__rate_interval]))`, "{{type}}"))).
		WithRow(dashboard.NewRowBuilder("Throughput")).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Chunk lines received").
			Description("Lines per second arriving in agent chunks (imports and tailing) and through the Loki push API.").
			GridPos(grid(12, 8)).Unit("short").
			Legend(legendList()).
			WithTarget(prom("A", `sum(rate(logsift_ingest_chunk_lines_total[$__rate_interval]))`, "agent chunks")).
			WithTarget(prom("B", `sum(rate(logsift_ingest_received_lines_total[$__rate_interval]))`, "Loki push"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Chunk bytes received").
			Description("Compressed chunk bytes per second from agents, by tenant.").
			GridPos(grid(12, 8)).Unit("Bps").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (tenant) (rate(logsift_ingest_chunk_bytes_total[$__rate_interval]))`, "{{tenant}}"))).
		WithRow(dashboard.NewRowBuilder("Failures")).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Chunks by outcome").
			Description("Chunks acknowledged as stored, recognised as duplicates (a resumed import resends what was cut short), rejected as invalid, or asked to retry.").
			GridPos(grid(12, 8)).Unit("ops").
			Legend(legendList()).
			WithTarget(prom("A", `sum by (status) (rate(logsift_ingest_chunks_total[$__rate_interval]))`, "{{status}}"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Failed and cancelled imports").
			Description("Import runs that failed or were cancelled, per interval.").
			GridPos(grid(12, 8)).Unit("short").
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
			Legend(legendList()).
			WithTarget(prom("A", `sum by (type) (increase(logsift_events_total{type=~"import\\.(failed|cancelled)"}[$__rate_interval]))`, "{{type}}"))).
		WithRow(dashboard.NewRowBuilder("Workspaces")).
		WithPanel(table.NewPanelBuilder().
			Title("Imported lines by workspace").
			Description("Lines stored per workspace whose timestamps fall in the last 30 days (imported logs keep their own timestamps; widen the range for older bundles).").
			GridPos(grid(12, 8)).
			TimeFrom("30d").
			WithTarget(instant("A", `sum by (workspace) (count_over_time({source="import"} [$__range]))`, "{{workspace}}")).
			WithTarget(instant("B", `sum by (workspace) (count_over_time({source="import"} | detected_level=~"`+ErrorLevels+`" [$__range]))`, "{{workspace}}")).
			WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
			WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
				"excludeByName": map[string]any{"Time": true},
				"renameByName":  map[string]any{"Value #A": "lines", "Value #B": "error lines"},
			}})).
		WithPanel(table.NewPanelBuilder().
			Title("Files by workspace").
			Description("Imported files per workspace in the last 30 days.").
			GridPos(grid(12, 8)).
			TimeFrom("30d").
			WithTarget(instant("A", `count by (workspace) (sum by (workspace, file) (count_over_time({source="import"} [$__range])))`, "{{workspace}}")).
			WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
			WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
				"excludeByName": map[string]any{"Time": true},
				"renameByName":  map[string]any{"Value": "files"},
			}}))
}
