package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/logsift/logsift/datasource/client"
)

// workspaceLookback is how far back the workspaces resource looks for
// workspace labels when the editor names no range: imported bundles hold
// old logs, and the registry, not the data, is the main list.
const workspaceLookback = 30 * 24 * time.Hour

// workspaceInfo is one workspace of the workspaces resource.
type workspaceInfo struct {
	Name string `json:"name"`
	// Registered tells a workspace of the server's registry from a
	// workspace label found only in the data (pushed by a Loki client,
	// or a Loki server without the registry).
	Registered bool `json:"registered"`
	// HasData tells that the range looked up holds logs of it.
	HasData     bool                 `json:"hasData"`
	Description string               `json:"description,omitempty"`
	Labels      map[string]string    `json:"labels,omitempty"`
	Sources     int                  `json:"sources"`
	Runs        int                  `json:"runs"`
	LastRun     *client.WorkspaceRun `json:"lastRun,omitempty"`
}

// workspacesResource lists the workspaces the editor's picker offers:
// the server's registry (GET /api/v1/workspaces) joined with the values
// of the workspace label in the range, so that data of an unregistered
// workspace can be picked too. A server without the registry (Loki)
// answers from the labels alone.
func (in *Instance) workspacesResource(ctx context.Context, p url.Values) ([]byte, error) {
	if p.Get("start") == "" {
		end := time.Now()
		if v := p.Get("end"); v != "" {
			t, err := parseTime(v)
			if err != nil {
				return nil, badRequest("invalid end %q: %v", v, err)
			}
			end = t
		}
		p.Set("end", end.Format(time.RFC3339Nano))
		p.Set("start", end.Add(-workspaceLookback).Format(time.RFC3339Nano))
	}
	start, end, err := timeRange(p)
	if err != nil {
		return nil, err
	}
	type registry struct {
		ws  []client.Workspace
		err error
	}
	regc := make(chan registry, 1)
	go func() {
		ws, err := in.client.Workspaces(ctx)
		regc <- registry{ws, err}
	}()
	names, lerr := in.client.LabelValues(ctx, WorkspaceLabel, start, end, "")
	reg := <-regc
	if lerr != nil {
		return nil, lerr
	}

	out := map[string]any{}
	hasRegistry := true
	if reg.err != nil {
		var se *client.StatusError
		switch {
		case errors.As(reg.err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusMethodNotAllowed || se.Code == http.StatusNotImplemented):
			hasRegistry = false
		default:
			// The labels still name the workspaces with data.
			hasRegistry = false
			out["warning"] = "the server's workspace registry could not be read: " + reg.err.Error()
			in.log.Warn("workspaces resource: registry", "error", reg.err)
		}
	}
	inData := make(map[string]bool, len(names))
	for _, n := range names {
		inData[n] = true
	}
	var list []workspaceInfo
	seen := map[string]bool{}
	for _, w := range reg.ws {
		if w.Name == "" || seen[w.Name] {
			continue
		}
		seen[w.Name] = true
		list = append(list, workspaceInfo{Name: w.Name, Registered: true, HasData: inData[w.Name], Description: w.Description,
			Labels: w.Labels, Sources: len(w.Sources), Runs: w.RunCount, LastRun: w.LastRun})
	}
	for _, n := range names {
		if n != "" && !seen[n] {
			seen[n] = true
			list = append(list, workspaceInfo{Name: n, HasData: true})
		}
	}
	slices.SortFunc(list, func(a, b workspaceInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	data := make([]string, len(list))
	for i, w := range list {
		data[i] = w.Name
	}
	if list == nil {
		list = []workspaceInfo{}
	}
	out["data"] = data
	out["workspaces"] = list
	out["registry"] = hasRegistry
	return json.Marshal(out)
}
