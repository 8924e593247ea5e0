// Command gpx_logsift is the backend of the logsift Grafana datasource
// plugin. Grafana starts it and talks to it over the plugin gRPC protocol;
// it is not meant to be run by hand.
package main

import (
	"os"
	"runtime/debug"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/logsift/logsift/datasource/plugin"
)

func main() {
	// The plugin's live heap is small and its garbage comes in bursts of
	// one answer (the server's JSON, the frame, its Arrow encoding):
	// collecting less often halves its CPU time per 1,000-line query for
	// a few megabytes more.
	debug.SetGCPercent(400)
	if err := datasource.Manage(plugin.ID, plugin.NewInstance, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("plugin stopped", "error", err)
		os.Exit(1)
	}
}
