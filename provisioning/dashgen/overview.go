package dashgen

import (
	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/logs"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// overviewSelector is the stream selector of every overview panel. The
// workspace matcher's "All" is ".*", which also matches streams without a
// workspace label (tailed and pushed logs); service_name is the label
// Loki's discover_service_name gives every pushed stream.
const overviewSelector = `{service_name=~"$service", workspace=~"$workspace"}`

// errorPattern reduces an error line to a pattern: the first line of a
// multi-line entry, numbers replaced, cut at 120 bytes, so that "timeout
// after 3012ms on conn 17" and "... 2950ms on conn 4" count together.
const errorPattern = "| label_format pattern=`{{ regexReplaceAll \"[0-9]+\" (regexReplaceAll \"(?s)\\n.*\" __line__ \"\") \"N\" | trunc 120 }}`"

// LogsOverview is "logsift / Logs overview": volume by level and service,
// top error patterns, and the lines, with service, workspace and ad-hoc
// label filters.
func LogsOverview() *dashboard.DashboardBuilder {
	levelColors := map[string]string{"error": "red", "critical": "dark-red", "fatal": "dark-red", "warn": "orange", "info": "green", "debug": "blue", "trace": "purple", "unknown": "text"}
	volumeByLevel := timeseries.NewPanelBuilder().
		Title("Log volume by level").
		Description("Lines per interval by detected_level (set at ingest: the push API and agent imports detect it).").
		GridPos(grid(12, 8)).
		Unit("short").
		DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).Stacking(stacked()).
		Legend(legendList()).
		WithTarget(series("A", `sum by (detected_level) (count_over_time(`+overviewSelector+` [$__auto]))`, "{{detected_level}}"))
	for _, lvl := range []string{"critical", "fatal", "error", "warn", "info", "debug", "trace", "unknown"} {
		volumeByLevel.OverrideByName(lvl, []dashboard.DynamicConfigValue{colorOverride(lvl, levelColors[lvl])})
	}

	return base("logsift-logs-overview", "logsift / Logs overview",
		"Volume by level and by service, the most frequent error patterns, and the lines themselves. Filter by service, workspace and any label (ad-hoc filters).").
		Time("now-1h", "now").
		Refresh("1m").
		WithVariable(allOf(queryVar("service", "Service", "label_values(service_name)"), ".+")).
		WithVariable(allOf(queryVar("workspace", "Workspace", "workspaces()"), ".*")).
		WithVariable(dashboard.NewAdHocVariableBuilder("filters").Label("Filters").Datasource(LogsiftRef())).
		WithRow(dashboard.NewRowBuilder("Volume")).
		WithPanel(stat.NewPanelBuilder().
			Title("Lines").
			Description("Lines in the time range.").
			GridPos(grid(4, 4)).Unit("short").Thresholds(plainThresholds()).
			GraphMode(common.BigValueGraphModeNone).ReduceOptions(lastValue()).Orientation(common.VizOrientationAuto).
			WithTarget(instant("A", `sum(count_over_time(`+overviewSelector+` [$__range]))`, "lines"))).
		WithPanel(stat.NewPanelBuilder().
			Title("Error lines").
			Description("Lines whose detected_level is error, critical or fatal, in the time range.").
			GridPos(grid(4, 4)).Unit("short").
			GraphMode(common.BigValueGraphModeNone).ReduceOptions(lastValue()).Orientation(common.VizOrientationAuto).
			ColorMode(common.BigValueColorModeBackground).
			Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps([]dashboard.Threshold{
				{Color: "green"}, {Value: ptr(1.0), Color: "red"},
			})).
			WithTarget(instant("A", `sum(count_over_time(`+overviewSelector+` | detected_level=~"`+ErrorLevels+`" [$__range]))`, "errors"))).
		WithPanel(stat.NewPanelBuilder().
			Title("Services").
			Description("Services (service_name values) with lines in the time range.").
			GridPos(grid(4, 4)).Unit("short").Thresholds(plainThresholds()).
			GraphMode(common.BigValueGraphModeNone).ReduceOptions(lastValue()).Orientation(common.VizOrientationAuto).
			WithTarget(instant("A", `count(sum by (service_name) (count_over_time(`+overviewSelector+` [$__range])))`, "services"))).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Error lines per minute by service").
			Description("What the alert rule \"Error lines per minute above threshold\" watches.").
			GridPos(grid(12, 4)).Unit("short").
			Legend(legendList()).
			WithTarget(series("A", `sum by (service_name) (count_over_time(`+overviewSelector+` | detected_level=~"`+ErrorLevels+`" [1m]))`, "{{service_name}}"))).
		WithPanel(volumeByLevel).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Log volume by service").
			Description("Lines per interval by service_name.").
			GridPos(grid(12, 8)).
			Unit("short").
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).Stacking(stacked()).
			Legend(legendTable()).
			WithTarget(series("A", `sum by (service_name) (count_over_time(`+overviewSelector+` [$__auto]))`, "{{service_name}}"))).
		WithRow(dashboard.NewRowBuilder("Errors")).
		WithPanel(bargauge.NewPanelBuilder().
			Title("Top error patterns").
			Description("The ten most frequent error lines in the time range, with numbers replaced by N and multi-line entries cut to their first line.").
			GridPos(grid(24, 9)).
			Unit("short").
			DisplayMode(common.BarGaugeDisplayModeBasic).
			Orientation(common.VizOrientationHorizontal).
			NamePlacement(common.BarGaugeNamePlacementTop).
			ReduceOptions(lastValue()).
			WithTarget(instant("A", `topk(10, sum by (pattern) (count_over_time(`+overviewSelector+` | detected_level=~"`+ErrorLevels+`" `+errorPattern+` [$__range])))`, "{{pattern}}"))).
		WithRow(dashboard.NewRowBuilder("Lines")).
		WithPanel(logs.NewPanelBuilder().
			Title("Lines").
			Description("The newest lines matching the filters. Open a line for its labels and the lines around it (log context).").
			GridPos(grid(24, 16)).
			ShowTime(true).WrapLogMessage(true).EnableLogDetails(true).ShowLogContextToggle(true).
			SortOrder(common.LogsSortOrderDescending).DedupStrategy(common.LogsDedupStrategyNone).
			WithTarget(lines("A", overviewSelector, 1000)))
}

func ptr[T any](v T) *T { return &v }
