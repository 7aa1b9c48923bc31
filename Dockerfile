# syntax=docker/dockerfile:1
# The replicator image. Build it for the platform the task definition names (linux/arm64):
#   docker buildx build --platform linux/arm64 -t sluice-replicator .
# The build stage runs on the builder's own platform and cross-compiles, so no emulation is needed.

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/sluice-replicator ./cmd/sluice-replicator

# No shell, no package manager; CA certificates (for rediss:// and TLS to the databases) and
# time zone data are included.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sluice-replicator /sluice-replicator
USER nonroot
# No CMD: the ECS task definition's command is `-task redis` (the replicator takes its sealed
# task from Redis with SLUICE_TASK_KEY); standalone, pass `-task /path/task.json` yourself.
ENTRYPOINT ["/sluice-replicator"]
