# syntax=docker/dockerfile:1
# logsift-agent image (the default target, "agent"), and "loggen", the
# sample log writer docker-compose uses. Static binaries on distroless,
# nonroot.
#
#   docker build -f deploy/docker/agent.Dockerfile -t logsift-agent:local .
#   docker build -f deploy/docker/agent.Dockerfile --target loggen -t logsift-loggen:local .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY pkg ./pkg
COPY agent ./agent
COPY deploy/healthcheck ./deploy/healthcheck
COPY deploy/loggen ./deploy/loggen
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/logsift-agent ./agent/cmd/logsift-agent && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./deploy/healthcheck && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/logsift-loggen ./deploy/loggen && \
    mkdir -p /out/state /out/logs /out/bundle

FROM gcr.io/distroless/static-debian12:nonroot AS loggen
COPY --from=build /out/logsift-loggen /usr/local/bin/logsift-loggen
# Owned by nonroot so that new named volumes mounted here are writable.
COPY --from=build --chown=65532:65532 /out/logs /logs
COPY --from=build --chown=65532:65532 /out/bundle /bundle
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/logsift-loggen"]
CMD ["live", "/logs/app.log"]

FROM gcr.io/distroless/static-debian12:nonroot AS agent
COPY --from=build /out/logsift-agent /usr/local/bin/logsift-agent
COPY --from=build /out/healthcheck /usr/local/bin/healthcheck
COPY --from=build --chown=65532:65532 /out/state /var/lib/logsift-agent
COPY deploy/agent/agent.yaml /etc/logsift-agent/agent.yaml
USER 65532:65532
EXPOSE 9080
VOLUME ["/var/lib/logsift-agent"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:9080/ready"]
ENTRYPOINT ["/usr/local/bin/logsift-agent"]
CMD ["run", "--config", "/etc/logsift-agent/agent.yaml"]
