package provisioning

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/logsift/logsift/datasource/plugin"
	"github.com/logsift/logsift/pkg/logql"
	"github.com/logsift/logsift/provisioning/dashgen"
)

func TestDatasourcesFile(t *testing.T) {
	f := loadDatasources(t)
	if f.APIVersion != 1 {
		t.Errorf("apiVersion %d, want 1", f.APIVersion)
	}
	byType := map[string]string{}
	urls := map[string]string{}
	uids := map[string]bool{}
	defaults := 0
	for _, ds := range f.Datasources {
		if ds.UID == "" || uids[ds.UID] {
			t.Errorf("datasource %q: uid %q is empty or repeated", ds.Name, ds.UID)
		}
		uids[ds.UID] = true
		byType[ds.Type] = ds.UID
		urls[ds.Type] = ds.URL
		if ds.IsDefault {
			defaults++
		}
		if ds.Access != "proxy" {
			t.Errorf("datasource %q: access %q; the plugin and Grafana's alerting need proxy (server-side) access", ds.Name, ds.Access)
		}
		if ds.Type == plugin.ID {
			jd, _ := json.Marshal(ds.JSONData)
			st, err := plugin.ParseSettings(backend.DataSourceInstanceSettings{URL: ds.URL, JSONData: jd})
			if err != nil {
				t.Errorf("the plugin refuses the provisioned settings: %v", err)
			}
			if st.URL != ds.URL {
				t.Errorf("plugin URL %q, provisioned %q", st.URL, ds.URL)
			}
		}
	}
	if defaults != 1 {
		t.Errorf("%d default datasources, want 1", defaults)
	}
	if byType[dashgen.LogsiftType] != dashgen.LogsiftUID {
		t.Errorf("logsift datasource uid %q; the dashboards use %q", byType[dashgen.LogsiftType], dashgen.LogsiftUID)
	}
	if byType[dashgen.PrometheusType] != dashgen.PrometheusUID {
		t.Errorf("prometheus datasource uid %q; the dashboards use %q", byType[dashgen.PrometheusType], dashgen.PrometheusUID)
	}
	if urls["loki"] == "" || urls["loki"] != urls[dashgen.LogsiftType] {
		t.Errorf("Grafana's Loki datasource (%q) must point at the same logsift server as the plugin (%q)", urls["loki"], urls[dashgen.LogsiftType])
	}
}

func TestAlertRulesFile(t *testing.T) {
	f := loadRules(t)
	if f.APIVersion != 1 {
		t.Errorf("apiVersion %d, want 1", f.APIVersion)
	}
	dsUIDs := map[string]string{"__expr__": "__expr__"}
	for _, ds := range loadDatasources(t).Datasources {
		dsUIDs[ds.UID] = ds.Type
	}
	// dashboard uid -> panel id -> panel title
	panels := map[string]map[int]string{}
	files, err := dashgen.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range files {
		var d struct {
			UID    string `json:"uid"`
			Panels []struct {
				ID    int    `json:"id"`
				Type  string `json:"type"`
				Title string `json:"title"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		panels[d.UID] = map[int]string{}
		for _, p := range d.Panels {
			if p.Type != "row" {
				panels[d.UID][p.ID] = p.Title
			}
		}
	}
	seen := map[string]bool{}
	n := 0
	for _, g := range f.Groups {
		if g.Name == "" || g.Folder == "" || g.OrgID < 1 {
			t.Errorf("group %q: name, folder and orgId are required", g.Name)
		}
		if d, err := time.ParseDuration(g.Interval); err != nil || d < 10*time.Second {
			t.Errorf("group %q: interval %q must be a duration of at least 10s (Grafana's minimum)", g.Name, g.Interval)
		}
		for _, r := range g.Rules {
			n++
			if r.UID == "" || seen[r.UID] || len(r.UID) > 40 {
				t.Errorf("rule %q: uid %q is empty, repeated or longer than 40 characters", r.Title, r.UID)
			}
			seen[r.UID] = true
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("rule %s: for %q: %v", r.UID, r.For, err)
			}
			if !map[string]bool{"OK": true, "NoData": true, "Alerting": true, "KeepLast": true}[r.NoDataState] {
				t.Errorf("rule %s: noDataState %q", r.UID, r.NoDataState)
			}
			if !map[string]bool{"Error": true, "Alerting": true, "OK": true, "KeepLast": true}[r.ExecErrState] {
				t.Errorf("rule %s: execErrState %q", r.UID, r.ExecErrState)
			}
			// Grafana links a rule to a panel: both or neither.
			if (r.DashboardUID == "") != (r.PanelID == 0) {
				t.Errorf("rule %s: dashboardUid and panelId go together", r.UID)
			} else if r.DashboardUID != "" {
				if _, ok := panels[r.DashboardUID][r.PanelID]; !ok {
					t.Errorf("rule %s: panel %d of dashboard %q is not a provisioned panel", r.UID, r.PanelID, r.DashboardUID)
				}
			}
			for k := range r.Annotations {
				if strings.HasPrefix(k, "__") {
					t.Errorf("rule %s: annotation %s is reserved; use dashboardUid and panelId", r.UID, k)
				}
			}
			refs := map[string]bool{}
			for _, d := range r.Data {
				refs[d.RefID] = true
			}
			if !refs[r.Condition] {
				t.Errorf("rule %s: condition %q is not one of its queries", r.UID, r.Condition)
			}
			for _, d := range r.Data {
				typ, ok := dsUIDs[d.DatasourceUID]
				if !ok {
					t.Errorf("rule %s query %s: datasource %q is not provisioned", r.UID, d.RefID, d.DatasourceUID)
					continue
				}
				if d.Model["refId"] != d.RefID {
					t.Errorf("rule %s query %s: model.refId is %v", r.UID, d.RefID, d.Model["refId"])
				}
				if ds, _ := d.Model["datasource"].(map[string]any); ds["uid"] != d.DatasourceUID || ds["type"] != typ {
					t.Errorf("rule %s query %s: model.datasource %v does not match datasourceUid %s (%s)", r.UID, d.RefID, ds, d.DatasourceUID, typ)
				}
				switch typ {
				case "__expr__":
					if _, err := parseThreshold(d.Model); err != nil {
						t.Errorf("rule %s query %s: %v", r.UID, d.RefID, err)
					}
					if e, _ := d.Model["expression"].(string); !refs[e] {
						t.Errorf("rule %s query %s: expression %q names no query of the rule", r.UID, d.RefID, e)
					}
				case dashgen.LogsiftType:
					expr, _ := d.Model["expr"].(string)
					if _, err := logql.ParseSampleExpr(expr); err != nil {
						t.Errorf("rule %s query %s: an alert needs a metric query: %v", r.UID, d.RefID, err)
					}
					if d.RelativeTimeRange.From <= d.RelativeTimeRange.To {
						t.Errorf("rule %s query %s: relativeTimeRange %+v is empty", r.UID, d.RefID, d.RelativeTimeRange)
					}
				case dashgen.PrometheusType:
					if d.Model["instant"] != true {
						t.Errorf("rule %s query %s: the threshold reads one value per series: make it instant", r.UID, d.RefID)
					}
				}
			}
		}
	}
	if n != 3 {
		t.Errorf("%d rules, want the 3 the issue asks for", n)
	}
}
