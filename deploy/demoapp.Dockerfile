# syntax=docker/dockerfile:1
#
# The demo app (stands in for your application; behaves like a Strapi v5 app):
# static binary, distroless, non-root.
#
#   docker build -f deploy/demoapp.Dockerfile -t meshsession/demoapp:dev .
#
# Environment: DEMOAPP_ADDR (:3000), JWT_SECRET (meshsession-demo-secret),
# JWT_ISSUER (none),
# TOKEN_TTL (30m), REFRESH_TTL (168h), DEMO_SID (true), LOG_LEVEL (info).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/demoapp ./e2e/cmd/demoapp

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/demoapp /usr/local/bin/demoapp
ENV DEMOAPP_ADDR=:3000
USER 65532:65532
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/demoapp"]
