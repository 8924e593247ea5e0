package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/logsift/logsift/pkg/lokiclient"
)

// The harness is shared by the package's tests: one server, one plugin.
var h *harness

// pluginLogs shows the plugin's own log, for debugging a failing test.
var pluginLogs = flag.Bool("plugin-logs", false, "print the plugin's log to stderr")

// pluginPprof serves the plugin's profiles on a loopback port (the SDK's
// GF_PLUGIN_PROFILING_* settings), for finding where its time goes.
var pluginPprof = flag.Int("plugin-pprof", 0, "serve the plugin's pprof on this loopback port")

type harness struct {
	dir string
	// main is the server the tests share, loaded with the test data.
	main      *serverProc
	serverURL string

	plugin      *goplugin.Client
	data        pluginv2.DataClient
	diagnostics pluginv2.DiagnosticsClient
	resource    pluginv2.ResourceClient
	stream      pluginv2.StreamClient

	// ds are the settings of the datasource the tests use.
	ds *pluginv2.DataSourceInstanceSettings
}

// serverProc is one logsift server process on loopback.
type serverProc struct {
	url  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan error
}

// tenant the test data is pushed to and the datasource reads.
const tenant = "e2e"

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e harness:", err)
		if h != nil && h.main != nil {
			fmt.Fprintln(os.Stderr, h.main.log.String())
		}
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "logsift-plugin-e2e")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	h = &harness{dir: dir}
	defer h.stop()
	if err := h.build(); err != nil {
		return 0, err
	}
	if h.main, err = startServer(filepath.Join(dir, "data")); err != nil {
		return 0, err
	}
	h.serverURL = h.main.url
	if err := loadData(h.client()); err != nil {
		return 0, fmt.Errorf("load test data: %w", err)
	}
	if err := h.startPlugin(); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// moduleRoot is two levels up from this package.
func moduleRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(filepath.Dir(wd))
}

func (h *harness) build() error {
	root := moduleRoot()
	for _, b := range [][2]string{
		{filepath.Join(h.dir, "logsift"), "./pkg/cmd/logsift"},
		{filepath.Join(h.dir, "gpx_logsift"), "./datasource"},
	} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", b[1], err)
		}
	}
	return nil
}

// startServer starts the built server on loopback ports (HTTP and the
// agents' gRPC) with a data directory of its own, and waits until it is
// ready.
func startServer(dataDir string) (*serverProc, error) {
	addrFile := dataDir + ".addr"
	sp := &serverProc{log: &bytes.Buffer{}, done: make(chan error, 1)}
	sp.cmd = exec.Command(filepath.Join(h.dir, "logsift"), "serve", "-data-dir", dataDir,
		"-http-listen-address", "127.0.0.1:0", "-grpc-listen-address", "127.0.0.1:0", "-log.level", "warn")
	sp.cmd.Env = append(os.Environ(), "LOGSIFT_ADDR_FILE="+addrFile)
	sp.cmd.Stdout, sp.cmd.Stderr = sp.log, sp.log
	if err := sp.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	go func() { sp.done <- sp.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			u := "http://" + string(b)
			if resp, err := http.Get(u + "/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					sp.url = u
					return sp, nil
				}
			}
		}
		select {
		case err := <-sp.done:
			return nil, fmt.Errorf("server exited during start: %v\n%s", err, sp.log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	sp.stop()
	return nil, fmt.Errorf("server not ready after 60s\n%s", sp.log)
}

// stop ends the server: SIGTERM, then SIGKILL after 30 s.
func (sp *serverProc) stop() {
	if sp == nil || sp.cmd.Process == nil {
		return
	}
	_ = sp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-sp.done:
	case <-time.After(30 * time.Second):
		_ = sp.cmd.Process.Kill()
		<-sp.done
	}
}

func (h *harness) client() *lokiclient.Client {
	return &lokiclient.Client{URL: h.serverURL, Tenant: tenant, Categorize: true}
}

// grpcConn hands the plugin's gRPC connection to the test, which builds
// the pluginv2 clients Grafana uses on it.
type grpcConn struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (grpcConn) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the harness is a client only")
}

func (grpcConn) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// startPlugin starts the executable with Grafana's handshake.
func (h *harness) startPlugin() error {
	set := goplugin.PluginSet{"data": grpcConn{}, "diagnostics": grpcConn{}, "resource": grpcConn{}, "stream": grpcConn{}}
	cmd := exec.Command(filepath.Join(h.dir, "gpx_logsift"))
	if *pluginPprof > 0 {
		cmd.Env = append(os.Environ(), "GF_PLUGIN_PROFILING_ENABLED=true", fmt.Sprintf("GF_PLUGIN_PROFILING_PORT=%d", *pluginPprof))
	}
	h.plugin = goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  2,
			MagicCookieKey:   "grafana_plugin_type",
			MagicCookieValue: "datasource",
		},
		VersionedPlugins: map[int]goplugin.PluginSet{2: set},
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: pluginLogOutput(), Level: hclog.Warn}),
		StartTimeout:     60 * time.Second,
	})
	rpc, err := h.plugin.Client()
	if err != nil {
		return fmt.Errorf("start plugin: %w", err)
	}
	conn := func(name string) (*grpc.ClientConn, error) {
		raw, err := rpc.Dispense(name)
		if err != nil {
			return nil, fmt.Errorf("dispense %s: %w", name, err)
		}
		return raw.(*grpc.ClientConn), nil
	}
	c, err := conn("data")
	if err != nil {
		return err
	}
	h.data = pluginv2.NewDataClient(c)
	if c, err = conn("diagnostics"); err != nil {
		return err
	}
	h.diagnostics = pluginv2.NewDiagnosticsClient(c)
	if c, err = conn("resource"); err != nil {
		return err
	}
	h.resource = pluginv2.NewResourceClient(c)
	if c, err = conn("stream"); err != nil {
		return err
	}
	h.stream = pluginv2.NewStreamClient(c)
	h.ds = settings(1, h.serverURL, `{"tenant":"`+tenant+`","timeoutSeconds":30,"maxLines":1000}`)
	return nil
}

func pluginLogOutput() io.Writer {
	if *pluginLogs {
		return os.Stderr
	}
	return io.Discard
}

func settings(id int64, url, jsonData string) *pluginv2.DataSourceInstanceSettings {
	return &pluginv2.DataSourceInstanceSettings{
		Id:                      id,
		Uid:                     fmt.Sprintf("logsift-e2e-%d", id),
		Name:                    "logsift",
		Url:                     url,
		JsonData:                []byte(jsonData),
		DecryptedSecureJsonData: map[string]string{"apiToken": "e2e-token"},
		LastUpdatedMS:           1,
	}
}

func (h *harness) stop() {
	if h.plugin != nil {
		h.plugin.Kill()
	}
	h.main.stop()
}

// pluginContext is what Grafana sends with every call.
func pluginContext(ds *pluginv2.DataSourceInstanceSettings) *pluginv2.PluginContext {
	return &pluginv2.PluginContext{OrgId: 1, PluginId: "logsift-datasource", DataSourceInstanceSettings: ds}
}

// query is one Grafana query over [from, to].
type query struct {
	refID    string
	json     string
	from, to time.Time
	interval time.Duration
}

// queryData calls QueryData and decodes the frames of each answer.
func queryData(t testing.TB, headers map[string]string, qs ...query) map[string]result {
	t.Helper()
	req := &pluginv2.QueryDataRequest{PluginContext: pluginContext(h.ds), Headers: headers}
	for _, q := range qs {
		iv := q.interval
		if iv == 0 {
			iv = time.Minute
		}
		req.Queries = append(req.Queries, &pluginv2.DataQuery{
			RefId: q.refID, MaxDataPoints: 1000, IntervalMS: iv.Milliseconds(),
			TimeRange: &pluginv2.TimeRange{FromEpochMS: q.from.UnixMilli(), ToEpochMS: q.to.UnixMilli()},
			Json:      []byte(q.json),
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := h.data.QueryData(ctx, req)
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	out := map[string]result{}
	for id, r := range resp.Responses {
		fs, err := data.UnmarshalArrowFrames(r.Frames)
		if err != nil {
			t.Fatalf("%s: decode frames: %v", id, err)
		}
		out[id] = result{frames: fs, err: r.Error, status: r.Status}
	}
	return out
}

type result struct {
	frames data.Frames
	err    string
	status int32
}

// callResource calls CallResource and returns the status and body.
func callResource(t testing.TB, ds *pluginv2.DataSourceInstanceSettings, path, rawQuery string) (int, []byte) {
	t.Helper()
	u := path
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := h.resource.CallResource(ctx, &pluginv2.CallResourceRequest{PluginContext: pluginContext(ds), Path: path, Method: "GET", Url: u})
	if err != nil {
		t.Fatalf("CallResource %s: %v", path, err)
	}
	var body bytes.Buffer
	code := 0
	for {
		msg, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("CallResource %s: %v", path, err)
		}
		if msg.Code != 0 {
			code = int(msg.Code)
		}
		body.Write(msg.Body)
	}
	return code, body.Bytes()
}

func decodeJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func mustContain(t testing.TB, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s: %q does not contain %q", what, s, sub)
	}
}
