# meshsession — the two commands: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
PLUGIN_SRC := $(shell find plugin -name '*.go' -not -path '*/testdata/*' 2>/dev/null) go.mod go.sum
TEST_FLAGS ?= -timeout 25m -p 2
BENCH ?= .
BENCHTIME ?= 1s
COUNT ?= 5

STATICCHECK := .build/bin/staticcheck
WASIRUN := $(CURDIR)/.build/wasirun

.PHONY: all plugin test test-wasm vet unit bench bench-report fuzz run clean tools screenshots

all: plugin

## plugin: build plugin.wasm (standard Go toolchain, GOOS=wasip1, c-shared)
plugin: plugin.wasm

plugin.wasm: $(PLUGIN_SRC)
	$(GO) run ./plugin/cmd/wasmbuild -o plugin.wasm

## vet: go vet and staticcheck, natively and for the Wasm target's pure packages
vet:
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./plugin/core/... ./plugin/protocol/...
	@scripts/ensure-tools staticcheck
	$(STATICCHECK) ./...
	GOOS=wasip1 GOARCH=wasm $(STATICCHECK) ./plugin/core/... ./plugin/protocol/...

## test: vet, build the module, run every test (Wasm, PostgreSQL and browser ones included)
test: vet plugin tools test-wasm
	MESHSESSION_REQUIRE_WASM=1 MESHSESSION_REQUIRE_POSTGRES=1 MESHSESSION_REQUIRE_BROWSER=1 \
	MESHSESSION_PLUGIN_WASM=$(CURDIR)/plugin.wasm \
	$(GO) test $(TEST_FLAGS) ./... 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}

## test-wasm: plugin/core's tests built for GOOS=wasip1 and run on wazero, so
## the code that exists only in the Wasm build (e.g. decide's 8-byte compare) is tested
test-wasm: $(WASIRUN)
	GOOS=wasip1 GOARCH=wasm WASIRUN_CACHE=$(CURDIR)/.build/wasirun-cache \
	$(GO) test $(TEST_FLAGS) -exec $(WASIRUN) ./plugin/core/...

$(WASIRUN): internal/cmd/wasirun/main.go go.mod go.sum
	@mkdir -p .build
	$(GO) build -o $@ ./internal/cmd/wasirun

## tools: what the tests need on this machine (staticcheck; Debian's chromium for the dashboard tests)
tools:
	@mkdir -p .build
	@scripts/ensure-tools

## bench: every benchmark (targets are in the benchmarks, never in timed tests)
bench: plugin
	MESHSESSION_PLUGIN_WASM=$(CURDIR)/plugin.wasm \
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -timeout 60m -p 1 ./...

## bench-report: the benchmarks README's "Speed and memory" quotes, COUNT runs
## each, into .build/bench-report.md (spread, targets met, machine); run it on a quiet machine
bench-report: plugin $(WASIRUN)
	COUNT=$(COUNT) BENCHTIME=$(BENCHTIME) scripts/bench-report

## fuzz: a short run of every fuzz target
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 10s $$pkg || exit 1; \
	  done; \
	done

## run: the whole system on one machine (sessionsvc, demo app, dev proxy hosting plugin.wasm),
## on loopback (MESHSESSION_DEV_BIND=0.0.0.0 for every interface). Built, then run directly:
## `go run` exits 1 on Ctrl-C even when the program stops cleanly.
run: plugin
	@mkdir -p .build
	$(GO) build -o .build/meshsession-dev ./e2e/cmd/meshsession-dev
	@exec .build/meshsession-dev

## screenshots: every dashboard page at 1440×900 and 390×844 in five languages, to .build/screenshots (headless chromium)
screenshots:
	rm -rf .build/screenshots && mkdir -p .build/screenshots
	MESHSESSION_SCREENSHOTS=$(CURDIR)/.build/screenshots MESHSESSION_REQUIRE_BROWSER=1 \
	  $(GO) test -count=1 -run 'TestBrowserPagesAllLanguages|TestBrowserActions' ./sessionsvc/dashboard/
	@echo "screenshots in .build/screenshots"

clean:
	rm -rf .build plugin.wasm data
