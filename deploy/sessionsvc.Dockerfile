# syntax=docker/dockerfile:1
#
# sessionsvc: multi-stage build of a static binary (CGO_ENABLED=0; SQLite is
# modernc.org/sqlite, pure Go) into a distroless image running as non-root.
#
#   docker build -f deploy/sessionsvc.Dockerfile -t meshsession/sessionsvc:dev .
#
# Build context: the repository root. Configuration is by environment
# (SESSIONSVC_ADDR, DATABASE_URL, MESHSESSION_INTERNAL_KEY, JWT_SECRET,
# ADMIN_TOKEN, SESSION_ENCRYPTION_KEY); see docker-compose.yml and
# deploy/kustomize/base/sessionsvc.yaml.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/sessionsvc ./sessionsvc
# The SQLite default needs a directory the non-root user can write.
RUN mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sessionsvc /usr/local/bin/sessionsvc
COPY --from=build --chown=65532:65532 /out/state /var/lib/meshsession
WORKDIR /var/lib/meshsession
ENV SESSIONSVC_ADDR=:8081 \
    DATABASE_URL=sqlite:///var/lib/meshsession/meshsession.db
# distroless "nonroot" (uid 65532); stated numerically so Kubernetes'
# runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/sessionsvc"]
