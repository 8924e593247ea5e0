// Package e2e tests the built datasource plugin as Grafana runs it: the
// tests build the gpx_logsift executable and the logsift server, start the
// server on loopback with generated logs (and the external corpus when it
// is present), start the plugin through hashicorp/go-plugin with Grafana's
// handshake, and call it over the plugin gRPC protocol: QueryData,
// CheckHealth, CallResource, SubscribeStream and RunStream. The package
// holds only tests.
package e2e
