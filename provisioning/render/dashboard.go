package render

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend/gtime"
)

// Dashboard is the part of a dashboard's JSON that says what its panels
// ask and how they are laid out.
type Dashboard struct {
	UID   string `json:"uid"`
	Title string `json:"title"`
	Time  struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Panels []Panel `json:"-"`
}

// Variable is a template variable of the dashboard.
type Variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Multi      bool   `json:"multi"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
}

// Panel is one panel: what the fixture needs to draw and query it. Raw is
// the panel's JSON as the dashboard holds it.
type Panel struct {
	ID            int      `json:"id"`
	Type          string   `json:"type"`
	Title         string   `json:"title"`
	GridPos       GridPos  `json:"gridPos"`
	TimeFrom      string   `json:"timeFrom"`
	Interval      string   `json:"interval"`
	MaxDataPoints int64    `json:"maxDataPoints"`
	Targets       []Target `json:"-"`
	Options       struct {
		SortOrder string `json:"sortOrder"`
	} `json:"options"`
	Raw json.RawMessage `json:"-"`
}

// GridPos is a panel's place on Grafana's 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Target is one query of a panel. Raw is the query JSON the panel stores,
// which Grafana sends with the variables written in.
type Target struct {
	RefID      string `json:"refId"`
	Expr       string `json:"expr"`
	QueryType  string `json:"queryType"`
	Instant    bool   `json:"instant"`
	Range      *bool  `json:"range"`
	Legend     string `json:"legendFormat"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Raw json.RawMessage `json:"-"`
}

// ParseDashboard reads a dashboard's JSON, keeping each panel's and each
// target's raw JSON beside the decoded fields.
func ParseDashboard(b []byte) (Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("decode the dashboard: %w", err)
	}
	var raw struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return d, fmt.Errorf("decode the dashboard's panels: %w", err)
	}
	for _, pr := range raw.Panels {
		var p Panel
		if err := json.Unmarshal(pr, &p); err != nil {
			return d, fmt.Errorf("decode a panel of %s: %w", d.UID, err)
		}
		var targets struct {
			Targets []json.RawMessage `json:"targets"`
		}
		if err := json.Unmarshal(pr, &targets); err != nil {
			return d, fmt.Errorf("decode the targets of panel %d of %s: %w", p.ID, d.UID, err)
		}
		for _, tr := range targets.Targets {
			var t Target
			if err := json.Unmarshal(tr, &t); err != nil {
				return d, fmt.Errorf("decode a target of panel %d of %s: %w", p.ID, d.UID, err)
			}
			t.Raw = tr
			p.Targets = append(p.Targets, t)
		}
		p.Raw = pr
		d.Panels = append(d.Panels, p)
	}
	return d, nil
}

// Layout is the page the panels are drawn on: Grafana's grid (24 columns,
// 30 px rows, 8 px between panels) in a browser window Width pixels wide.
// The host page reads it from the fixture, so that the widths the
// requests were computed for are the widths drawn.
type Layout struct {
	Width      int `json:"width"`
	Padding    int `json:"padding"`
	CellHeight int `json:"cellHeight"`
	Margin     int `json:"margin"`
}

// DefaultLayout is a 1600-pixel-wide window, padded as Grafana pads a
// dashboard.
var DefaultLayout = Layout{Width: 1600, Padding: 16, CellHeight: 30, Margin: 8}

// PanelWidth is the width in pixels of a panel w columns wide, as
// react-grid-layout (Grafana's grid) computes it.
func (l Layout) PanelWidth(w int) int {
	inner := float64(l.Width - 2*l.Padding)
	col := (inner - float64(l.Margin*23)) / 24
	return int(math.Round(col*float64(w) + float64(l.Margin*(w-1))))
}

// TimeRange is an absolute range with the relative text it came from.
type TimeRange struct {
	From, To       time.Time
	RawFrom, RawTo string
}

// Resolve turns a relative range ("now-5m" to "now") into an absolute one
// at now, as Grafana's time picker does.
func Resolve(from, to string, now time.Time) (TimeRange, error) {
	tr := gtime.TimeRange{From: from, To: to, Now: now}
	f, err := tr.ParseFrom()
	if err != nil {
		return TimeRange{}, fmt.Errorf("time range start %q: %w", from, err)
	}
	t, err := tr.ParseTo()
	if err != nil {
		return TimeRange{}, fmt.Errorf("time range end %q: %w", to, err)
	}
	if !f.Before(t) {
		return TimeRange{}, fmt.Errorf("time range %s to %s is empty", from, to)
	}
	return TimeRange{From: f, To: t, RawFrom: from, RawTo: to}, nil
}

// PanelRange is the range a panel queries: the dashboard's, or the last
// TimeFrom of it when the panel overrides it ("30d").
func PanelRange(p Panel, r TimeRange) (TimeRange, error) {
	if p.TimeFrom == "" {
		return r, nil
	}
	pr, err := Resolve("now-"+p.TimeFrom, "now", r.To)
	if err != nil {
		return r, fmt.Errorf("panel %d: timeFrom: %w", p.ID, err)
	}
	pr.RawTo = r.RawTo
	return pr, nil
}

// Interval is $__interval for a panel: the range over the panel's data
// points, rounded to one of Grafana's steps, and at least minInterval (the
// datasource's "min interval", Prometheus' scrape interval), as
// rangeUtil.calculateInterval in Grafana's frontend computes it.
func Interval(r TimeRange, maxDataPoints int64, minInterval time.Duration) time.Duration {
	iv := gtime.RoundInterval(r.To.Sub(r.From) / time.Duration(maxDataPoints))
	if iv < minInterval {
		iv = minInterval
	}
	if iv < time.Millisecond {
		iv = time.Millisecond
	}
	return iv
}

// Value is what a variable is set to: All, or a list of values.
type Value struct {
	All    bool
	Values []string
}

// Interpolate writes the dashboard's variables into a logsift query as
// the plugin's frontend does (templateSrv.replace with the plugin's
// variableFormatter): All with a custom all value gives that value as it
// is; a multi-value or include-all variable gives its values
// regex-escaped and joined by |; any other a LogQL string-escaped value.
// Grafana's built-in variables ($__auto, $__range, ...) are left for the
// backend, which resolves them itself.
func Interpolate(expr string, vars []Variable, values map[string]Value) (string, error) {
	var firstErr error
	out := variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		if strings.HasPrefix(name, "__") {
			return ref
		}
		var v *Variable
		for i := range vars {
			if vars[i].Name == name {
				v = &vars[i]
			}
		}
		val, ok := values[name]
		if v == nil || !ok {
			if firstErr == nil {
				firstErr = fmt.Errorf("query %q uses $%s, which has no value", expr, name)
			}
			return ref
		}
		return format(*v, val)
	})
	return out, firstErr
}

// variableRef matches $name, ${name}, ${name:format} and [[name]].
var variableRef = regexp.MustCompile(`\$\{([A-Za-z0-9_.]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_.]+)(?::[^\]]*)?\]\]`)

func format(v Variable, val Value) string {
	if val.All && v.AllValue != "" {
		return v.AllValue
	}
	multi := v.Multi || v.IncludeAll
	if len(val.Values) == 1 && !multi {
		return escapeString(val.Values[0])
	}
	parts := make([]string, len(val.Values))
	for i, s := range val.Values {
		parts[i] = escapeString(escapeRegex(s))
	}
	return strings.Join(parts, "|")
}

// escapeString escapes a value for a LogQL double-quoted string
// (src/logql/escape.ts).
func escapeString(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
}

// escapeRegex escapes the characters a regular expression reads
// (src/logql/escape.ts: RE2's metacharacters).
func escapeRegex(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`.*+?^${}()|[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
