package dashgen

import (
	"fmt"
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// ImportsQuery is the logsift datasource's import progress query
// (queryType "imports", datasource/querymodel.TypeImports): the runs of a
// workspace, or of all, with no LogQL expression. The frontend follows it
// through Grafana Live; QueryData answers the runs' current state.
type ImportsQuery struct {
	RefID      string                `json:"refId"`
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	QueryType  string                `json:"queryType"`
	Workspace  string                `json:"workspace,omitempty"`
}

var _ variants.Dataquery = ImportsQuery{}

// ImplementsDataqueryVariant marks ImportsQuery as a panel target.
func (ImportsQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the plugin id.
func (ImportsQuery) DataqueryType() string { return LogsiftType }

// Validate refuses a target of another query type.
func (q ImportsQuery) Validate() error {
	if q.QueryType != "imports" {
		return fmt.Errorf("import progress query %s has queryType %q, want imports", q.RefID, q.QueryType)
	}
	return nil
}

// Equals compares two targets.
func (q ImportsQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(ImportsQuery)
	return ok && reflect.DeepEqual(q, o)
}

// Build makes ImportsQuery its own builder.
func (q ImportsQuery) Build() (variants.Dataquery, error) {
	if q.Datasource == nil {
		r := LogsiftRef()
		q.Datasource = &r
	}
	return q, q.Validate()
}

// importProgress is the live table of import runs: one row per run, its
// newest state (the frontend keeps the newest row of each run of the
// channel), newest update first.
func importProgress() *table.PanelBuilder {
	statusColors := map[string]any{}
	for i, s := range []struct{ status, color string }{{"running", "blue"}, {"completed", "green"}, {"failed", "red"}, {"cancelled", "orange"}} {
		statusColors[s.status] = map[string]any{"color": s.color, "index": i}
	}
	return table.NewPanelBuilder().
		Title("Import progress").
		Description("Workspace import runs as the agent reports them, live through Grafana Live (the plugin follows the server's import events): runs still running and those updated in the time range, with files and bytes done of the planned totals, lines, average throughput and the error of a failed run.").
		GridPos(grid(24, 8)).
		WithTarget(ImportsQuery{RefID: "A", QueryType: "imports"}).
		WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
			"excludeByName": map[string]any{"chunks": true},
			"indexByName": map[string]any{"time": 0, "workspace": 1, "status": 2, "percent": 3, "files_done": 4, "files_total": 5,
				"bytes_done": 6, "bytes_total": 7, "lines": 8, "throughput": 9, "duration": 10, "host": 11, "run_id": 12, "error": 13},
			"renameByName": map[string]any{"time": "updated", "percent": "progress", "files_total": "files", "bytes_total": "bytes", "run_id": "run"},
		}}).
		SortBy([]cog.Builder[common.TableSortByFieldState]{common.NewTableSortByFieldStateBuilder().DisplayName("updated").Desc(true)}).
		OverrideByName("progress", []dashboard.DynamicConfigValue{
			{Id: "custom.cellOptions", Value: map[string]any{"type": "gauge", "mode": "basic"}},
			{Id: "min", Value: 0}, {Id: "max", Value: 100},
			// A full gauge is done, not alarming: one colour whatever the share.
			{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "blue"}},
		}).
		OverrideByName("status", []dashboard.DynamicConfigValue{
			{Id: "mappings", Value: []any{map[string]any{"type": "value", "options": statusColors}}},
			{Id: "custom.cellOptions", Value: map[string]any{"type": "color-text"}},
		})
}

// Imports is "logsift / Imports": the progress of import runs (live, from
// the plugin's imports channel), import runs as the server's event bus
// counts them (logsift_events_total, from /metrics through Prometheus),
// the chunk throughput that imports and agents produce, failures, and the
// lines each workspace holds (from logsift itself).
func Imports() *dashboard.DashboardBuilder {
	importTypes := `type=~"import\\.(started|completed|failed|cancelled)"`
	return base("logsift-imports", "logsift / Imports",
		"Workspace imports: the progress of each run (live), runs started, completed and failed (server events, via Prometheus), chunk throughput and rejections while bundles arrive, and the lines stored per workspace.").
		Time("now-6h", "now").
		Refresh("30s").
		WithRow(dashboard.NewRowBuilder("Import runs")).
		WithPanel(importProgress()).
		WithPanel(stat.NewPanelBuilder().
			Title("Import runs in the time range").
			Description("Import events the server published (logsift_events_total): runs started, completed, failed and cancelled.").
			GridPos(grid(12, 5)).Unit("short").
			// increase() extrapolates to the range's edges (2.01 runs):
			// runs are whole.
			Decimals(0).Thresholds(plainThresholds()).
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
			WithTarget(instantTable("A", `sum by (workspace) (count_over_time({source="import"} [$__range]))`)).
			WithTarget(instantTable("B", `sum by (workspace) (count_over_time({source="import"} | detected_level=~"`+ErrorLevels+`" [$__range]))`)).
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
			WithTarget(instantTable("A", `count by (workspace) (sum by (workspace, file) (count_over_time({source="import"} [$__range])))`)).
			WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
			WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
				"excludeByName": map[string]any{"Time": true},
				"renameByName":  map[string]any{"Value #A": "files"},
			}}))
}
