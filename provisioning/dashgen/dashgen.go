// Package dashgen builds logsift's provisioned Grafana dashboards as code
// with the Grafana Foundation SDK. `go run ./provisioning/generate` writes
// what Files returns into provisioning/dashboards/; a test regenerates them
// in memory and fails when the checked-in JSON has drifted.
package dashgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// Datasource identities, as provisioning/datasources/datasources.yaml
// provisions them (a test checks that the two agree).
const (
	LogsiftUID     = "logsift"
	LogsiftType    = "logsift-datasource"
	PrometheusUID  = "logsift-prometheus"
	PrometheusType = "prometheus"
)

// Folder is the dashboards' folder in Grafana (the provider's folder).
const Folder = "logsift"

// ErrorLevels matches detected_level values that count as errors.
const ErrorLevels = `error|critical|fatal`

func ref(typ, uid string) common.DataSourceRef { return common.DataSourceRef{Type: &typ, Uid: &uid} }

// LogsiftRef and PrometheusRef are the panels' datasource references.
func LogsiftRef() common.DataSourceRef    { return ref(LogsiftType, LogsiftUID) }
func PrometheusRef() common.DataSourceRef { return ref(PrometheusType, PrometheusUID) }

// Query is the logsift datasource's query model (datasource/querymodel.Model
// is the backend's reading of it), as a panel target.
type Query struct {
	RefID        string                `json:"refId"`
	Datasource   *common.DataSourceRef `json:"datasource,omitempty"`
	Expr         string                `json:"expr"`
	QueryType    string                `json:"queryType,omitempty"`
	MaxLines     int                   `json:"maxLines,omitempty"`
	Direction    string                `json:"direction,omitempty"`
	Workspace    string                `json:"workspace,omitempty"`
	LegendFormat string                `json:"legendFormat,omitempty"`
	Step         string                `json:"step,omitempty"`
	Hide         bool                  `json:"hide,omitempty"`
	// Format "table" answers one table frame: a column per label and
	// "Value #<refId>", which the merge and organize transformations of
	// table panels expect.
	Format string `json:"format,omitempty"`
}

var _ variants.Dataquery = Query{}

// ImplementsDataqueryVariant marks Query as a panel target.
func (Query) ImplementsDataqueryVariant() {}

// DataqueryType is the plugin id.
func (Query) DataqueryType() string { return LogsiftType }

// Validate refuses a target without an expression.
func (q Query) Validate() error {
	if q.Expr == "" {
		return fmt.Errorf("query %s has no expr", q.RefID)
	}
	return nil
}

// Equals compares two targets.
func (q Query) Equals(other variants.Dataquery) bool {
	o, ok := other.(Query)
	return ok && reflect.DeepEqual(q, o)
}

// Build makes Query its own builder.
func (q Query) Build() (variants.Dataquery, error) {
	if q.Datasource == nil {
		r := LogsiftRef()
		q.Datasource = &r
	}
	return q, q.Validate()
}

// lines is a log query (the logs panel's lines).
func lines(refID, expr string, maxLines int) Query {
	return Query{RefID: refID, Expr: expr, QueryType: "range", MaxLines: maxLines}
}

// series is a range metric query drawn as time series.
func series(refID, expr, legend string) Query {
	return Query{RefID: refID, Expr: expr, QueryType: "range", LegendFormat: legend}
}

// instant is a metric query with one value per series (tables, bars).
func instant(refID, expr, legend string) Query {
	return Query{RefID: refID, Expr: expr, QueryType: "instant", LegendFormat: legend}
}

// instantTable is an instant query answered as a table (format "table"):
// one row per series, a column per label, the value in "Value #<refId>".
func instantTable(refID, expr string) Query {
	return Query{RefID: refID, Expr: expr, QueryType: "instant", Format: "table"}
}

// plainThresholds colours a value by the theme's text colour, not by the
// default thresholds (red from 80), for a count that is neither good nor
// bad.
func plainThresholds() *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps([]dashboard.Threshold{{Color: "text"}})
}

// prom is a Prometheus range query over logsift's /metrics.
func prom(refID, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().RefId(refID).Expr(expr).LegendFormat(legend).Range().Datasource(PrometheusRef())
}

// promInstant is a Prometheus instant query.
func promInstant(refID, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().RefId(refID).Expr(expr).LegendFormat(legend).Instant().Datasource(PrometheusRef())
}

func grid(w, h uint32) dashboard.GridPos { return dashboard.GridPos{W: w, H: h} }

// Files returns every dashboard as indented JSON by file name.
func Files() (map[string][]byte, error) {
	builders := map[string]*dashboard.DashboardBuilder{
		"logs-overview.json":           LogsOverview(),
		"workspace-investigation.json": WorkspaceInvestigation(),
		"imports.json":                 Imports(),
		"logsift.json":                 Self(),
	}
	out := make(map[string][]byte, len(builders))
	for name, b := range builders {
		d, err := b.Build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", name, err)
		}
		numberPanels(&d)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		// LogQL and PromQL are full of <, > and &: keep them readable.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", name, err)
		}
		out[name] = buf.Bytes()
	}
	return out, nil
}

// base is what every logsift dashboard shares.
func base(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"logsift"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Timezone(common.TimeZoneBrowser).
		Link(dashboard.NewDashboardLinkBuilder("logsift").Type(dashboard.DashboardLinkTypeDashboards).Tags([]string{"logsift"}).AsDropdown(true).IncludeVars(false).KeepTime(true))
}

// queryVar is a variable filled by a query of the logsift datasource
// (label_values(...), workspaces(): see src/datasource.ts metricFindQuery).
func queryVar(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(LogsiftRef()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}

// allOf makes a multi-value variable whose "All" is the regexp allValue.
func allOf(v *dashboard.QueryVariableBuilder, allValue string) *dashboard.QueryVariableBuilder {
	return v.Multi(true).IncludeAll(true).AllValue(allValue).
		Current(dashboard.VariableOption{
			Selected: cog.ToPtr(true),
			Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		})
}

func stacked() *common.StackingConfigBuilder {
	return common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)
}

func legendTable() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeTable).Placement(common.LegendPlacementRight).Calcs([]string{"sum"})
}

func legendList() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)
}

// colorOverride pins a series' colour (levels keep their usual colours).
func colorOverride(name, color string) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": color}}
}

// numberPanels gives every panel and row a unique id in layout order:
// Grafana links, panel views (viewPanel=) and library panels go by it, and
// the builders leave it unset.
func numberPanels(d *dashboard.Dashboard) {
	for i := range d.Panels {
		id := uint32(i + 1)
		switch p := d.Panels[i]; {
		case p.Panel != nil:
			p.Panel.Id = &id
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
	}
}

// lastValue is the reduction of every stat panel: the value at the end of the
// range (instant queries have only that one).
func lastValue() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)
}
