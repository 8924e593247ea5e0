package lokiapi

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/logsift/logsift/pkg/logql"
)

// formatQuery serves /loki/api/v1/format_query: the query as logsift's
// printer writes it back, canonical spacing and quoting included.
func (a *API) formatQuery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed: use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "invalid form: "+err.Error(), http.StatusBadRequest)
		return
	}
	q := r.Form.Get("query")
	if strings.TrimSpace(q) == "" {
		a.fail(w, r, badParam("query parameter is required"))
		return
	}
	expr, err := logql.ParseExpr(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeData(w, expr.String())
}

// LokiCompatVersion is the Loki version logsift reports in buildinfo and
// drilldown-limits. Clients that gate features on Loki's version read
// it: Logs Drilldown needs Loki 3.2 and 3.3 for detected_field values;
// 3.5.0 is a release with every endpoint logsift serves. logsift's own
// version is in BuildInfo.LogsiftVersion.
const LokiCompatVersion = "3.5.0"

// BuildInfo is the body of /loki/api/v1/status/buildinfo: Prometheus'
// build information fields, as Loki serves them, plus logsift's own.
type BuildInfo struct {
	Version        string `json:"version"`
	Revision       string `json:"revision"`
	Branch         string `json:"branch"`
	BuildUser      string `json:"buildUser"`
	BuildDate      string `json:"buildDate"`
	GoVersion      string `json:"goVersion"`
	Application    string `json:"application"`
	LogsiftVersion string `json:"logsiftVersion"`
}

// DefaultBuildInfo describes the running binary from the build
// information Go embeds.
func DefaultBuildInfo() BuildInfo {
	defaultBuildInfo.once.Do(func() { defaultBuildInfo.bi = readBuildInfo() })
	return defaultBuildInfo.bi
}

// defaultBuildInfo is read once: the binary does not change while it runs.
var defaultBuildInfo struct {
	once sync.Once
	bi   BuildInfo
}

func readBuildInfo() BuildInfo {
	bi := BuildInfo{
		Version:        LokiCompatVersion,
		Branch:         "HEAD",
		BuildUser:      "logsift",
		GoVersion:      runtime.Version(),
		Application:    "logsift",
		LogsiftVersion: "devel",
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		bi.LogsiftVersion = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			bi.Revision = s.Value
		case "vcs.time":
			bi.BuildDate = s.Value
		}
	}
	return bi
}

func (a *API) buildInfo(w http.ResponseWriter, r *http.Request) {
	bi := a.Build
	if bi == (BuildInfo{}) {
		bi = DefaultBuildInfo()
	}
	writeJSON(w, bi)
}

// logLevelFields are the keys pkg/levels reads a level from.
var logLevelFields = []string{"level", "LEVEL", "Level", "severity", "SEVERITY", "Severity", "lvl", "LVL", "Lvl", "log.level", "loglevel", "levelname"}

// drilldownLimits serves /loki/api/v1/drilldown-limits, which Logs
// Drilldown reads on start to learn the tenant's limits and whether
// patterns are available.
func (a *API) drilldownLimits(w http.ResponseWriter, r *http.Request) {
	c, ok := a.begin(w, r)
	if !ok {
		return
	}
	l := c.limits
	levels, serviceNameFrom := true, []string{}
	if a.Discovery != nil {
		levels, serviceNameFrom = a.Discovery(c.tenant)
		if serviceNameFrom == nil {
			serviceNameFrom = []string{}
		}
	}
	bi := a.Build
	if bi == (BuildInfo{}) {
		bi = DefaultBuildInfo()
	}
	writeJSON(w, map[string]any{
		"limits": map[string]any{
			"discover_log_levels":         levels,
			"discover_service_name":       serviceNameFrom,
			"log_level_fields":            logLevelFields,
			"max_entries_limit_per_query": l.MaxEntriesPerQuery,
			"max_line_size_truncate":      false,
			"max_query_bytes_read":        logql.FormatBytes(uint64(l.MaxQueryBytesRead)),
			"max_query_length":            logql.FormatDuration(l.MaxQueryLength),
			"max_query_lookback":          "0s",
			"max_query_range":             logql.FormatDuration(l.MaxQueryRange),
			"max_query_series":            l.MaxQuerySeries,
			"metric_aggregation_enabled":  false,
			"pattern_persistence_enabled": false,
			"query_timeout":               logql.FormatDuration(l.QueryTimeout),
			"retention_period":            "0s",
			"volume_enabled":              true,
			"volume_max_series":           l.VolumeMaxSeries,
		},
		"pattern_ingester_enabled": true,
		"version":                  bi.Version,
	})
}
