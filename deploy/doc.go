// Package deploy holds what it takes to run logsift outside `go run`:
// Dockerfiles (docker/), the files docker-compose.yml mounts (compose/),
// example server and agent configurations (server/, agent/), systemd units
// (systemd/) and Kubernetes manifests (k8s/), plus two small programs the
// images carry (healthcheck/, loggen/). Its tests validate all of them
// against the real parsers: `docker compose config`, the server's and the
// agent's configuration loaders, systemd-analyze and the Kubernetes API
// types.
package deploy
