// Package provisioning holds logsift's Grafana provisioning files:
// datasources/ (the logsift plugin, Grafana's Loki datasource pointed at
// logsift's Loki API, and Prometheus for /metrics), dashboards/ (generated
// by provisioning/dashgen) and alerting/ (Grafana-managed alert rules).
// Its tests decode every file strictly and evaluate every alert rule on
// data that should fire it and data that should resolve it.
package provisioning
