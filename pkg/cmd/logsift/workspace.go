package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/logsift/logsift/pkg/workspace"
)

const workspaceUsage = `Usage:
  logsift workspace ls                      list workspaces
  logsift workspace create NAME [-description TEXT]
  logsift workspace show NAME [-runs N]     sources and import runs
  logsift workspace rename NAME NEW_NAME
  logsift workspace rm NAME --yes           delete a workspace AND ITS DATA
  logsift workspace cancel NAME RUN_ID      cancel a running import

Flags (anywhere after the subcommand):
  -server URL     logsift server (default $LOGSIFT_URL or http://localhost:3100)
  -tenant T       tenant, sent as X-Scope-OrgID (default $LOGSIFT_TENANT)
  -token TOKEN    API token, sent as a bearer token (default $LOGSIFT_TOKEN)
  -json           print the server's JSON instead of tables
`

// runWorkspace is `logsift workspace ...`: a client of the server's
// workspace HTTP API (the server owns the metadata file and its lock).
func runWorkspace(ctx context.Context, args []string) error {
	return workspaceCommand(ctx, args, os.Stdout)
}

type workspaceClient struct {
	server, tenant, token string
	http                  *http.Client
}

func workspaceCommand(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(out, workspaceUsage)
		if len(args) == 0 {
			return errors.New("name a subcommand")
		}
		return nil
	}
	sub := args[0]
	fs := flag.NewFlagSet("workspace "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := fs.String("server", envOr("LOGSIFT_URL", "http://localhost:3100"), "")
	tenantID := fs.String("tenant", os.Getenv("LOGSIFT_TENANT"), "")
	token := fs.String("token", os.Getenv("LOGSIFT_TOKEN"), "")
	asJSON := fs.Bool("json", false, "")
	yes := fs.Bool("yes", false, "")
	description := fs.String("description", "", "")
	runs := fs.Int("runs", 20, "")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return fmt.Errorf("%w\n\n%s", err, workspaceUsage)
	}
	c := &workspaceClient{server: strings.TrimSuffix(*server, "/"), tenant: *tenantID, token: *token,
		http: &http.Client{Timeout: 10 * time.Minute}}
	want := func(n int, what string) error {
		if len(pos) != n {
			return fmt.Errorf("workspace %s takes %s\n\n%s", sub, what, workspaceUsage)
		}
		return nil
	}
	var raw []byte
	switch sub {
	case "ls", "list":
		if err := want(0, "no arguments"); err != nil {
			return err
		}
		var list struct {
			Workspaces []workspace.Workspace `json:"workspaces"`
		}
		if raw, err = c.do(ctx, "GET", "/api/v1/workspaces", nil, &list); err != nil {
			return err
		}
		if !*asJSON {
			printWorkspaces(out, list.Workspaces)
			return nil
		}
	case "create":
		if err := want(1, "a NAME"); err != nil {
			return err
		}
		if err := workspace.ValidateName(pos[0]); err != nil {
			return err
		}
		var w workspace.Workspace
		body := workspace.CreateRequest{Name: pos[0], Description: *description}
		if raw, err = c.do(ctx, "POST", "/api/v1/workspaces", body, &w); err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(out, "created workspace %s\n", w.Name)
			return nil
		}
	case "show", "get":
		if err := want(1, "a NAME"); err != nil {
			return err
		}
		var w workspace.Workspace
		if raw, err = c.do(ctx, "GET", "/api/v1/workspaces/"+url.PathEscape(pos[0]), nil, &w); err != nil {
			return err
		}
		if !*asJSON {
			printWorkspace(out, &w, *runs)
			return nil
		}
	case "rename", "mv":
		if err := want(2, "NAME and NEW_NAME"); err != nil {
			return err
		}
		var w workspace.Workspace
		if raw, err = c.do(ctx, "PATCH", "/api/v1/workspaces/"+url.PathEscape(pos[0]), map[string]string{"name": pos[1]}, &w); err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(out, "renamed workspace %s to %s; data stored under %s stays in it\n", pos[0], w.Name, strings.Join(w.Aliases, ", "))
			return nil
		}
	case "rm", "delete":
		if err := want(1, "a NAME"); err != nil {
			return err
		}
		if !*yes {
			return fmt.Errorf("deleting workspace %s deletes all its log data; run again with --yes to confirm", pos[0])
		}
		var res struct {
			Deleted        string `json:"deleted"`
			DeletedStreams int    `json:"deleted_streams"`
		}
		path := "/api/v1/workspaces/" + url.PathEscape(pos[0]) + "?confirm=" + url.QueryEscape(pos[0])
		if raw, err = c.do(ctx, "DELETE", path, nil, &res); err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(out, "deleted workspace %s and its data (%d streams)\n", res.Deleted, res.DeletedStreams)
			return nil
		}
	case "cancel":
		if err := want(2, "NAME and RUN_ID"); err != nil {
			return err
		}
		var r workspace.Run
		path := "/api/v1/workspaces/" + url.PathEscape(pos[0]) + "/runs/" + url.PathEscape(pos[1]) + "/cancel"
		if raw, err = c.do(ctx, "POST", path, nil, &r); err != nil {
			return err
		}
		if !*asJSON {
			fmt.Fprintf(out, "import run %s is %s; its agent stops at its next report\n", r.ID, r.Status)
			return nil
		}
	default:
		return fmt.Errorf("unknown workspace subcommand %q\n\n%s", sub, workspaceUsage)
	}
	_, err = out.Write(raw)
	return err
}

// parseInterspersed lets flags follow positional arguments, as in
// `logsift workspace rm case-1 --yes`; the flag package stops at the first
// non-flag.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// do sends a request and decodes the answer into out; it returns the raw
// body for -json. A server error becomes an error carrying its message.
func (c *workspaceClient) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.tenant != "" {
		req.Header.Set("X-Scope-OrgID", c.tenant)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("talk to the logsift server at %s: %w", c.server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read the server's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return nil, fmt.Errorf("server answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("server's answer is not what this client expects: %w", err)
	}
	return raw, nil
}

func printWorkspaces(out io.Writer, ws []workspace.Workspace) {
	if len(ws) == 0 {
		fmt.Fprintln(out, "no workspaces")
		return
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].Name < ws[j].Name })
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCES\tRUNS\tLAST RUN\tSTATUS\tCREATED")
	for _, w := range ws {
		last, status := "-", "-"
		if w.LastRun != nil {
			last, status = formatTime(w.LastRun.Started), string(w.LastRun.Status)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", w.Name, len(w.Sources), w.RunCount, last, status, formatTime(w.Created))
	}
	tw.Flush()
}

func printWorkspace(out io.Writer, w *workspace.Workspace, maxRuns int) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", w.Name)
	fmt.Fprintf(tw, "Tenant:\t%s\n", w.Tenant)
	fmt.Fprintf(tw, "Created:\t%s\n", formatTime(w.Created))
	if w.Description != "" {
		fmt.Fprintf(tw, "Description:\t%s\n", w.Description)
	}
	if len(w.Labels) > 0 {
		keys := make([]string, 0, len(w.Labels))
		for k := range w.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+w.Labels[k])
		}
		fmt.Fprintf(tw, "Labels:\t%s\n", strings.Join(parts, ", "))
	}
	if len(w.Aliases) > 0 {
		fmt.Fprintf(tw, "Former names:\t%s\n", strings.Join(w.Aliases, ", "))
	}
	tw.Flush()

	fmt.Fprintf(out, "\nSources (%d):\n", len(w.Sources))
	if len(w.Sources) > 0 {
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  KIND\tPATH\tHOST\tADDED")
		for _, s := range w.Sources {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.Kind, s.Path, dash(s.Host), formatTime(s.Added))
		}
		tw.Flush()
	}

	fmt.Fprintf(out, "\nImport runs (%d):\n", len(w.Runs))
	runs := w.Runs
	if maxRuns > 0 && len(runs) > maxRuns {
		runs = runs[:maxRuns]
	}
	if len(runs) > 0 {
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tSTATUS\tSTARTED\tDURATION\tFILES\tBYTES\tLINES\tCHUNKS\tERRORS\tHOST\tSOURCE")
		for _, r := range runs {
			c := r.Counters
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d/%d\t%s/%s\t%d\t%d\t%d\t%s\t%s\n", r.ID, r.Status, formatTime(r.Started),
				(time.Duration(r.DurationMS) * time.Millisecond).String(), c.FilesDone, c.Files,
				formatBytes(c.BytesDone), formatBytes(c.Bytes), c.Lines, c.Chunks, r.ErrorCount, dash(r.Host), dash(r.Source))
		}
		tw.Flush()
		if len(runs) < len(w.Runs) {
			fmt.Fprintf(out, "  ... %d older runs (-runs 0 shows all)\n", len(w.Runs)-len(runs))
		}
	}
	// The newest run's errors are what someone looking at a workspace
	// usually wants to see.
	if len(w.Runs) > 0 && len(w.Runs[0].Errors) > 0 {
		r := w.Runs[0]
		fmt.Fprintf(out, "\nErrors of run %s (%d of %d):\n", r.ID, len(r.Errors), r.ErrorCount)
		for _, e := range r.Errors {
			fmt.Fprintf(out, "  %s\n", e)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
