// Package plugin is the backend of the logsift Grafana datasource: one
// Instance per configured datasource answers Grafana's QueryData,
// CheckHealth, CallResource and Grafana Live stream calls by talking to a
// logsift (or any Loki-compatible) server over its HTTP API.
package plugin

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/logsift/logsift/datasource/client"
)

// ID is the plugin's id in plugin.json.
const ID = "logsift-datasource"

// Instance serves one datasource with one set of settings. Grafana's
// instance manager replaces it, and calls Dispose, when the settings
// change.
type Instance struct {
	settings Settings
	uid      string
	// configErr is a settings problem; every call reports it instead of
	// failing to create the instance, so that the health check can say
	// exactly what is wrong.
	configErr error

	transport *http.Transport
	// client bounds each request by the timeout setting; for a tail the
	// timeout bounds only the dial.
	client *client.Client

	// channels are the tail channels QueryData named.
	channels channelRegistry

	// ctx ends the instance's running streams on Dispose.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    log.Logger
}

var (
	_ backend.QueryDataHandler      = (*Instance)(nil)
	_ backend.CheckHealthHandler    = (*Instance)(nil)
	_ backend.CallResourceHandler   = (*Instance)(nil)
	_ backend.StreamHandler         = (*Instance)(nil)
	_ instancemgmt.InstanceDisposer = (*Instance)(nil)
)

// NewInstance is the instance factory for datasource.Manage.
func NewInstance(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	return newInstance(s), nil
}

func newInstance(s backend.DataSourceInstanceSettings) *Instance {
	in := &Instance{uid: s.UID, log: backend.Logger.With("datasource", s.UID)}
	in.ctx, in.cancel = context.WithCancel(context.Background())
	st, err := ParseSettings(s)
	in.settings = st
	if err != nil {
		in.configErr = err
		return in
	}
	tr, err := st.transport()
	if err != nil {
		in.configErr = err
		return in
	}
	in.transport = tr
	hc := &http.Client{Transport: tr}
	cfg := client.Config{URL: st.URL, Tenant: st.Tenant, Token: st.APIToken, HTTP: hc, Timeout: st.Timeout}
	if in.client, err = client.New(cfg); err != nil {
		in.configErr = err
		return in
	}
	return in
}

// Dispose ends the instance's streams and closes its idle connections.
func (in *Instance) Dispose() {
	in.cancel()
	done := make(chan struct{})
	go func() { in.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		// A stream stuck sending to Grafana ends with Grafana's context.
		in.log.Warn("streams still running after dispose")
	}
	if in.transport != nil {
		in.transport.CloseIdleConnections()
	}
}
