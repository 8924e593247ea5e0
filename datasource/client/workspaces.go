package client

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Workspace is one entry of the server's workspace registry
// (GET /api/v1/workspaces, docs/workspaces.md): what the editor shows
// next to a workspace's name.
type Workspace struct {
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Sources     []WorkspaceSource `json:"sources,omitempty"`
	RunCount    int               `json:"run_count"`
	LastRun     *WorkspaceRun     `json:"last_run,omitempty"`
}

// WorkspaceSource is a place a workspace's logs come from.
type WorkspaceSource struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
	Host string `json:"host,omitempty"`
}

// WorkspaceRun is the newest import run of a workspace.
type WorkspaceRun struct {
	ID       string    `json:"id"`
	Status   string    `json:"status"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Counters struct {
		Files     int64 `json:"files"`
		FilesDone int64 `json:"files_done"`
		Bytes     int64 `json:"bytes"`
		BytesDone int64 `json:"bytes_done"`
		Lines     int64 `json:"lines"`
	} `json:"counters"`
	ErrorCount int64 `json:"error_count"`
}

// Workspaces lists the tenant's registered workspaces. A server without
// the registry (Loki) answers a StatusError with code 404.
func (c *Client) Workspaces(ctx context.Context) ([]Workspace, error) {
	body, err := c.get(ctx, "/api/v1/workspaces", nil, nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Workspaces []Workspace `json:"workspaces"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode workspaces: %w", err)
	}
	return out.Workspaces, nil
}
