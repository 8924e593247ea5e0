# syntax=docker/dockerfile:1
# logsift server image: a static binary on distroless, running as nonroot.
#
#   docker build -f deploy/docker/server.Dockerfile -t logsift:local .
#   docker run -p 3100:3100 -p 9095:9095 -v logsift-data:/var/lib/logsift logsift:local

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
# The server binary imports pkg/ and agent/ (the demo runs the agent in
# process); nothing else of the repository is needed.
COPY pkg ./pkg
COPY agent ./agent
COPY deploy/healthcheck ./deploy/healthcheck
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/logsift ./pkg/cmd/logsift && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./deploy/healthcheck && \
    mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/logsift /usr/local/bin/logsift
COPY --from=build /out/healthcheck /usr/local/bin/healthcheck
# A new named volume takes the ownership of the image's directory, so the
# nonroot user (65532) can write its data directory.
COPY --from=build --chown=65532:65532 /out/data /var/lib/logsift
COPY deploy/server/ /etc/logsift/
USER 65532:65532
EXPOSE 3100 9095
VOLUME ["/var/lib/logsift"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:3100/ready"]
ENTRYPOINT ["/usr/local/bin/logsift"]
CMD ["serve", "-config.file=/etc/logsift/logsift.yaml"]
