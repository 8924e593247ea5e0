package provisioning

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// datasourcesFile is Grafana's datasource provisioning format (the fields
// logsift's file uses; unknown fields fail the decode, so a typo shows).
type datasourcesFile struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name           string            `yaml:"name"`
		UID            string            `yaml:"uid"`
		Type           string            `yaml:"type"`
		Access         string            `yaml:"access"`
		URL            string            `yaml:"url"`
		IsDefault      bool              `yaml:"isDefault"`
		Editable       bool              `yaml:"editable"`
		JSONData       map[string]any    `yaml:"jsonData"`
		SecureJSONData map[string]string `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

// rulesFile is Grafana's alert rule provisioning format.
type rulesFile struct {
	APIVersion int `yaml:"apiVersion"`
	Groups     []struct {
		OrgID    int    `yaml:"orgId"`
		Name     string `yaml:"name"`
		Folder   string `yaml:"folder"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	UID       string `yaml:"uid"`
	Title     string `yaml:"title"`
	Condition string `yaml:"condition"`
	Data      []struct {
		RefID             string `yaml:"refId"`
		RelativeTimeRange struct {
			From int `yaml:"from"`
			To   int `yaml:"to"`
		} `yaml:"relativeTimeRange"`
		DatasourceUID string         `yaml:"datasourceUid"`
		Model         map[string]any `yaml:"model"`
	} `yaml:"data"`
	DashboardUID string            `yaml:"dashboardUid"`
	PanelID      int               `yaml:"panelId"`
	NoDataState  string            `yaml:"noDataState"`
	ExecErrState string            `yaml:"execErrState"`
	For          string            `yaml:"for"`
	Labels       map[string]string `yaml:"labels"`
	Annotations  map[string]string `yaml:"annotations"`
}

func decodeStrict(t *testing.T, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: more than one YAML document", path)
	}
}

func loadDatasources(t *testing.T) datasourcesFile {
	var f datasourcesFile
	decodeStrict(t, filepath.Join("datasources", "datasources.yaml"), &f)
	return f
}

func loadRules(t *testing.T) rulesFile {
	var f rulesFile
	decodeStrict(t, filepath.Join("alerting", "rules.yaml"), &f)
	return f
}

// findRule returns the provisioned rule with uid.
func findRule(t *testing.T, uid string) rule {
	t.Helper()
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.UID == uid {
				return r
			}
		}
	}
	t.Fatalf("no rule %s in alerting/rules.yaml", uid)
	return rule{}
}

// logsiftJSONData is the provisioned logsift datasource's jsonData as the
// plugin receives it.
func logsiftJSONData(t *testing.T) json.RawMessage {
	t.Helper()
	for _, ds := range loadDatasources(t).Datasources {
		if ds.Type == "logsift-datasource" {
			b, err := json.Marshal(ds.JSONData)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatal("no logsift-datasource in datasources.yaml")
	return nil
}

func (r rule) query(refID string) (map[string]any, string, error) {
	for _, d := range r.Data {
		if d.RefID == refID {
			return d.Model, d.DatasourceUID, nil
		}
	}
	return nil, "", fmt.Errorf("rule %s has no query %s", r.UID, refID)
}
