# meshsession — the two commands: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
PLUGIN_SRC := $(shell find plugin -name '*.go' -not -path '*/testdata/*' 2>/dev/null) go.mod go.sum
TEST_FLAGS ?= -timeout 25m -p 2
BENCH ?= .
BENCHTIME ?= 1s

.PHONY: all plugin test vet unit bench fuzz run clean tools screenshots

all: plugin

## plugin: build plugin.wasm (standard Go toolchain, GOOS=wasip1, c-shared)
plugin: plugin.wasm

plugin.wasm: $(PLUGIN_SRC)
	$(GO) run ./plugin/cmd/wasmbuild -o plugin.wasm

## vet: go vet, natively and for the Wasm target's pure packages
vet:
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./plugin/core/... ./plugin/protocol/...

## test: vet, build the module, run every test (Wasm, PostgreSQL and browser ones included)
test: vet plugin tools
	MESHSESSION_REQUIRE_WASM=1 MESHSESSION_REQUIRE_POSTGRES=1 MESHSESSION_REQUIRE_BROWSER=1 \
	MESHSESSION_PLUGIN_WASM=$(CURDIR)/plugin.wasm \
	$(GO) test $(TEST_FLAGS) ./... 2>&1 | tee .build/test.log; exit $${PIPESTATUS[0]}

## tools: what the tests need on this machine (Debian's chromium for the dashboard tests)
tools:
	@mkdir -p .build
	@scripts/ensure-tools

## bench: every benchmark (targets are in the benchmarks, never in timed tests)
bench: plugin
	MESHSESSION_PLUGIN_WASM=$(CURDIR)/plugin.wasm \
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -timeout 60m -p 1 ./...

## fuzz: a short run of every fuzz target
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 10s $$pkg || exit 1; \
	  done; \
	done

## run: the whole system on one machine (sessionsvc, demo app, dev proxy hosting plugin.wasm)
run: plugin
	$(GO) run ./e2e/cmd/meshsession-dev

## screenshots: every dashboard page at 1440×900 and 390×844 in five languages, to .build/screenshots (headless chromium)
screenshots:
	rm -rf .build/screenshots && mkdir -p .build/screenshots
	MESHSESSION_SCREENSHOTS=$(CURDIR)/.build/screenshots MESHSESSION_REQUIRE_BROWSER=1 \
	  $(GO) test -count=1 -run 'TestBrowserPagesAllLanguages|TestBrowserActions' ./sessionsvc/dashboard/
	@echo "screenshots in .build/screenshots"

clean:
	rm -rf .build plugin.wasm data
