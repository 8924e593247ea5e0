package dashgen

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/logs"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// workspaceSelector picks the chosen workspace's chosen files; "All" files
// is ".+" (every imported stream has a file label).
const workspaceSelector = `{workspace="$workspace", file=~"$file"}`

// timestampAs makes an entry's own timestamp (ms) the sample value, so that
// min_over_time and max_over_time give a file's first and last line.
const timestampAs = "| label_format ts=`{{ __timestamp__ | unixEpochMillis }}` | unwrap ts"

// WorkspaceInvestigation is "logsift / Workspace investigation": pick a
// workspace (an imported bundle), see its files, the time each covers,
// where errors burst, and read the lines.
func WorkspaceInvestigation() *dashboard.DashboardBuilder {
	dateOverride := []dashboard.DynamicConfigValue{{Id: "unit", Value: "dateTimeAsIso"}}
	return base("logsift-workspace", "logsift / Workspace investigation",
		"One workspace (an imported log bundle): its files with their line counts and the time each covers, error bursts per file, and the lines. Imported logs keep their own timestamps, so widen the time range to the bundle's period.").
		Time("now-30d", "now").
		WithVariable(queryVar("workspace", "Workspace", "workspaces()")).
		WithVariable(allOf(queryVar("file", "File", `label_values({workspace="$workspace"}, file)`), ".+")).
		WithVariable(dashboard.NewTextBoxVariableBuilder("search").Label("Line contains").Description("A substring every shown line must contain (LogQL |=); empty shows all.")).
		WithRow(dashboard.NewRowBuilder("Files")).
		WithPanel(table.NewPanelBuilder().
			Title("Files").
			Description("Each file of the workspace: lines and error lines in the time range, and the timestamps of its first and last line.").
			GridPos(grid(24, 9)).
			WithTarget(instantTable("A", `sum by (file) (count_over_time(`+workspaceSelector+` [$__range]))`)).
			WithTarget(instantTable("B", `sum by (file) (count_over_time(`+workspaceSelector+` | detected_level=~"`+ErrorLevels+`" [$__range]))`)).
			WithTarget(instantTable("C", `min by (file) (min_over_time(`+workspaceSelector+` `+timestampAs+` [$__range]))`)).
			WithTarget(instantTable("D", `max by (file) (max_over_time(`+workspaceSelector+` `+timestampAs+` [$__range]))`)).
			WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
			WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
				"excludeByName": map[string]any{"Time": true},
				"renameByName":  map[string]any{"Value #A": "lines", "Value #B": "error lines", "Value #C": "first line", "Value #D": "last line"},
				"indexByName":   map[string]any{"file": 0, "Value #A": 1, "Value #B": 2, "Value #C": 3, "Value #D": 4},
			}}).
			OverrideByName("first line", dateOverride).
			OverrideByName("last line", dateOverride)).
		WithPanel(statetimeline.NewPanelBuilder().
			Title("Time covered by each file").
			Description("A band where a file has lines: gaps, overlaps and rotations show at a glance.").
			GridPos(grid(24, 8)).
			ShowValue(common.VisibilityModeNever).
			MergeValues(true).
			Legend(legendList().ShowLegend(false)).
			WithTarget(series("A", `sum by (file) (count_over_time(`+workspaceSelector+` [$__auto]))`, "{{file}}"))).
		WithRow(dashboard.NewRowBuilder("Errors")).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Error bursts by file").
			Description("Error, critical and fatal lines per interval, per file.").
			GridPos(grid(24, 8)).
			Unit("short").
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).Stacking(stacked()).
			Legend(legendTable()).
			WithTarget(series("A", `sum by (file) (count_over_time(`+workspaceSelector+` | detected_level=~"`+ErrorLevels+`" [$__auto]))`, "{{file}}"))).
		WithRow(dashboard.NewRowBuilder("Lines")).
		WithPanel(logs.NewPanelBuilder().
			Title("Lines").
			Description("The workspace's lines in time order, each with its file and line number; open a line for the lines around it in its file.").
			GridPos(grid(24, 18)).
			ShowTime(true).WrapLogMessage(true).EnableLogDetails(true).ShowLogContextToggle(true).
			SortOrder(common.LogsSortOrderAscending).DedupStrategy(common.LogsDedupStrategyNone).
			WithTarget(Query{RefID: "A", Expr: workspaceSelector + ` |= "$search"`, QueryType: "range", MaxLines: 5000, Direction: "forward"}))
}
