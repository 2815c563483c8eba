# modshop: `make run` runs the shop, `make test` passes the tests,
# `make help` lists every target.
GO      ?= go
BIN     := bin/modshop

# The Go release the shop is built and tested with: 1.26.8's standard library
# has 12 vulnerabilities the shop reaches (net/http, crypto/tls, crypto/x509,
# os; make vulncheck), fixed in 1.26.9 and 1.26.10. The go command fetches
# this release through the module proxy once (about 75 MB) whatever Go is
# installed; GOTOOLCHAIN=local make ... builds with the installed one.
GOTOOLCHAIN ?= go1.26.10
export GOTOOLCHAIN
PKGS    := ./...

# Tools, each pinned and installed by `go install` into bin/tools under its
# version (changing a pin installs the new one); nothing outside the clone.
TOOLS               := bin/tools
GOTESTSUM_VERSION   := v1.13.0
GOVULNCHECK_VERSION := v1.9.0
GOSEC_VERSION       := v2.30.0
# The Go vulnerability database, as the golang.org/x/vulndb module (through
# the module proxy, so it works where vuln.go.dev cannot be reached).
VULNDB_VERSION      := v0.0.0-20261105234957-e22db6528018

GOTESTSUM   := $(TOOLS)/gotestsum-$(GOTESTSUM_VERSION)
GOVULNCHECK := $(TOOLS)/govulncheck-$(GOVULNCHECK_VERSION)
GOSEC       := $(TOOLS)/gosec-$(GOSEC_VERSION)
INDEXDB     := $(TOOLS)/indexdb-$(VULNDB_VERSION)
VULNDB      := $(TOOLS)/vulndb-$(VULNDB_VERSION)

.PHONY: help run build test chaos fuzz openapi-lint lint fmt vet vulncheck gosec bench bench-users bench-products bench-bus bench-chain bench-orders bench-topologies bench-tracing clean postgres-binaries chromium rabbitmq promtool jaeger trace-demo lighthouse

## help: list the targets and what each does
help:
	@awk '/^## [a-z-]+: / { t = $$2; sub(/:$$/, "", t); d = $$0; sub(/^## [a-z-]+: /, "", d); \
		printf "make %-17s", t; n = 0; w = split(d, words, " "); \
		for (i = 1; i <= w; i++) { if (n + length(words[i]) > 70 && n > 0) { printf "\n%22s", ""; n = 0 } \
			printf " %s", words[i]; n += length(words[i]) + 1 } printf "\n" }' $(MAKEFILE_LIST)

## run: build and run the shop on http://localhost:8080 (embedded PostgreSQL in ./.data unless MODSHOP_DATABASE_URL is set; demo catalog when empty)
run: postgres-binaries build
	./$(BIN) serve --seed-demo

## build: compile the single binary into bin/modshop, showing the downloads and compilation of a first build
build:
	@GO="$(GO)" ./scripts/build $(BIN)

## test: every test, with the race detector, against TEST_DATABASE_URL or an embedded PostgreSQL; the web UI in headless Chromium; the rabbitmq bus transport against TEST_AMQP_URL or the local RabbitMQ; the alert rules through promtool. Prints each package as it finishes and the failures again at the end
test: postgres-binaries chromium rabbitmq promtool openapi-lint $(GOTESTSUM)
	$(GOTESTSUM) --format pkgname-and-test-fails --format-hide-empty-pkg --raw-command -- $(GO) test -json -race -count=1 -p 2 -timeout 20m $(PKGS)
	@# cuts the broker under a subscriber; watermill-amqp reconnects with a data race, so without -race (app/probe_broker_test.go)
	$(GO) test -count=1 -run '^TestReadyz_RabbitMQTransportIncludesTheBroker$$' ./app/

## chaos: the chaos suite alone, verbosely, and the fault hook's own tests (app/chaos: the shop under order load through database restarts and outages, SIGKILLs, failing handlers and a slow consumer; about 5 minutes; make test runs it too), with its per-fault figures
chaos: postgres-binaries
	$(GO) test -tags chaos -race -count=1 -run 'TestInjectFault|TestChaosFromEnv' ./platform/bus/
	$(GO) test -race -count=1 -v -timeout 20m -run 'TestChaos|TestReleaseBinaryHasNoFaultHook' ./app/chaos/

## openapi-lint: the OpenAPI document the shop serves, against redocly's recommended rules (the linter pinned in tools/openapi-lint, installed there by npm ci)
openapi-lint: tools/openapi-lint/node_modules/.installed
	$(GO) run ./tools/openapi-lint tools/openapi-lint/openapi.json
	cd tools/openapi-lint && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true ./node_modules/.bin/redocly lint --config redocly.yaml --max-problems 100 openapi.json

tools/openapi-lint/node_modules/.installed: tools/openapi-lint/package-lock.json
	@command -v npm >/dev/null || { echo "make openapi-lint needs Node.js (20.19 or later) and npm: apt-get install nodejs npm"; exit 1; }
	cd tools/openapi-lint && npm ci --no-audit --no-fund
	@touch $@

## fuzz: each fuzz target for FUZZTIME (default 20s) with FUZZWORKERS processes, each with a shop of its own; make test runs their seed corpora only; a failing input is saved under the package's testdata/fuzz
FUZZTIME ?= 20s
FUZZWORKERS ?= 2
FUZZPKGS ?= ./...
fuzz: postgres-binaries
	@list="$$($(GO) test -list '^Fuzz' $(FUZZPKGS))" || { echo "$$list"; exit 1; }; \
	echo "$$list" | awk '/^Fuzz/ { t[n++] = $$1 } /^ok/ { for (i = 0; i < n; i++) print $$2, t[i]; n = 0 }' | { \
		failed=""; \
		while read -r pkg target; do \
			echo "== $$target ($$pkg), $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -parallel $(FUZZWORKERS) "$$pkg" || failed="$$failed $$target"; \
		done; \
		if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi; }

## lint: gofmt and go vet
lint: fmt vet

## fmt: list the files gofmt would change (fails if any)
fmt:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## vet: go vet
vet:
	$(GO) vet $(PKGS)

## vulncheck: govulncheck against a vulnerability database built locally from the golang.org/x/vulndb module (no access to vuln.go.dev needed)
vulncheck: $(GOVULNCHECK) $(VULNDB)/index/db.json
	$(GOVULNCHECK) -db file://$(CURDIR)/$(VULNDB) $(PKGS)

## gosec: the gosec security checker on the shop's code (suppressions carry a #nosec comment that says why)
gosec: $(GOSEC)
	$(GOSEC) -quiet -exclude-generated $(PKGS)

# go-install NAME PACKAGE VERSION installs a pinned tool as $@.
define go-install
	@echo "installing $(2)@$(3) into $(TOOLS)"
	@mkdir -p $(TOOLS)/.gobin
	@GOBIN="$(CURDIR)/$(TOOLS)/.gobin" $(GO) install $(2)@$(3)
	@mv $(TOOLS)/.gobin/$(1) $@
endef

$(GOTESTSUM):
	$(call go-install,gotestsum,gotest.tools/gotestsum,$(GOTESTSUM_VERSION))

$(GOVULNCHECK):
	$(call go-install,govulncheck,golang.org/x/vuln/cmd/govulncheck,$(GOVULNCHECK_VERSION))

$(GOSEC):
	$(call go-install,gosec,github.com/securego/gosec/v2/cmd/gosec,$(GOSEC_VERSION))

$(INDEXDB):
	$(call go-install,indexdb,golang.org/x/vulndb/cmd/indexdb,$(VULNDB_VERSION))

# The database in govulncheck's format, from the module's OSV files, by
# the vulndb repository's own indexer.
$(VULNDB)/index/db.json: $(INDEXDB)
	@echo "building the vulnerability database from golang.org/x/vulndb@$(VULNDB_VERSION)"
	@src="$$($(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p')"; \
		test -d "$$src/data/osv" || { echo "golang.org/x/vulndb@$(VULNDB_VERSION) could not be downloaded"; exit 1; }; \
		rm -rf $(VULNDB).tmp && $(INDEXDB) -vulns "$$src/data/osv" -out $(VULNDB).tmp && rm -rf $(VULNDB) && mv $(VULNDB).tmp $(VULNDB)

# make bench runs each benchmark below, each appending the figures of issue 17's targets to
# BENCH_RESULTS (benchkit.Record), and ends with tools/benchtable's table.
# A benchmark that fails leaves its targets "not run" and fails make bench
# after the table.
BENCH_RESULTS := $(CURDIR)/tmp/bench/results.jsonl
BENCH_TABLE_TARGETS := bench-chain bench-orders bench-bus bench-products bench-catalog
BENCH_TARGETS := $(BENCH_TABLE_TARGETS) bench-users bench-topologies bench-tracing
.PHONY: bench-fast bench-table

## bench: every benchmark (each prints its figures beside pgbench measured in the same run), then one table: each target of issue 17, its figure from this run, met / not met / not run (figures in tmp/bench/results.jsonl; about 30 minutes)
bench: postgres-binaries
	@mkdir -p $(dir $(BENCH_RESULTS)) && rm -f $(BENCH_RESULTS)
	@failed=""; for t in $(BENCH_TARGETS); do \
		echo "== make $$t"; \
		MODSHOP_BENCH_RESULTS=$(BENCH_RESULTS) $(MAKE) --no-print-directory $$t || failed="$$failed $$t"; \
	done; \
	$(GO) run ./tools/benchtable -commit "$$(git describe --always --dirty 2>/dev/null)" $(BENCH_RESULTS); \
	if [ -n "$$failed" ]; then echo "bench: failed:$$failed"; exit 1; fi

## bench-fast: the same table in about 12 minutes (plus bench-catalog's): only the benchmarks it reads, with 20 s phases (MODSHOP_BENCH_PHASE) and without the bus benchmarks' comparison variants (MODSHOP_BENCH_FAST)
bench-fast:
	@MODSHOP_BENCH_PHASE=$${MODSHOP_BENCH_PHASE:-20s} MODSHOP_BENCH_FAST=1 \
		$(MAKE) --no-print-directory bench BENCH_TARGETS="$(BENCH_TABLE_TARGETS)"

## bench-table: the table of the last make bench again; BENCHTABLE=-markdown prints it as docs/benchmarks.md's "Where we stand"
bench-table:
	@$(GO) run ./tools/benchtable $(BENCHTABLE) -commit "$$(git describe --always --dirty 2>/dev/null)" $(BENCH_RESULTS)

## bench-users: log-in and /users/me requests/s against pgbench select-only tps
bench-users: postgres-binaries
	$(GO) test -run '^$$' -bench BenchmarkUsers -benchtime 1x -timeout 10m ./app/bench/

## bench-products: GET /products/{id} and search requests/s against pgbench select-only tps
bench-products: postgres-binaries
	$(GO) test -run '^$$' -bench BenchmarkProducts -benchtime 1x -timeout 10m ./app/bench/

## bench-catalog: search and category pages (1 and 30) of a generated catalog of 1,000,000 products, p50/p99, beside pgbench select-only; the catalog is generated once (a few minutes) and kept in database modshop_bench_catalog
bench-catalog: postgres-binaries
	$(GO) test -run '^$$' -bench '^BenchmarkCatalog$$' -benchtime 1x -timeout 30m ./app/bench/

## bench-orders: the saga under fixed-rate load: confirmed orders/s against pgbench TPC-B, latencies, invariants
bench-orders: postgres-binaries
	$(GO) test -run '^$$' -bench BenchmarkOrders -benchtime 1x -timeout 15m ./app/bench/

## bench-topologies: the saga in each topology (one binary; four processes on one database; four on four databases with RabbitMQ), one run: capacity, confirmed orders/s and placed→confirmed latency at one rate, against pgbench TPC-B; invariants
bench-topologies: postgres-binaries rabbitmq
	$(GO) test -run '^$$' -bench BenchmarkTopologies -benchtime 1x -timeout 15m ./app/bench/

## bench-tracing: the saga's capacity with tracing off, sampled at 10% with statement spans to a local OTLP receiver, and always on without statement spans, in one run
bench-tracing: postgres-binaries
	$(GO) test -run '^$$' -bench '^BenchmarkTracing$$' -benchtime 1x -timeout 15m ./app/bench/

## bench-bus: publish-and-consume throughput against pgbench TPC-B tps, hop latency, stock settings
bench-bus: postgres-binaries
	$(GO) test -run '^$$' -bench '^BenchmarkBus$$' -benchtime 1x -timeout 10m ./platform/bus/

## bench-chain: the floor under the order saga on this bus: five-hop event chains (inbox mark + one row + the next event per hop), sustained chains/s against pgbench TPC-B
bench-chain: postgres-binaries
	$(GO) test -run '^$$' -bench '^BenchmarkBusChain$$' -benchtime 1x -timeout 10m ./platform/bus/

postgres-binaries:
	@./scripts/ensure-postgres-binaries

## rabbitmq: a RabbitMQ for the rabbitmq bus transport's tests (started, or installed, when missing; MODSHOP_SKIP_RABBITMQ=1 skips them)
rabbitmq:
	@./scripts/ensure-rabbitmq

## chromium: Debian's chromium for the browser tests (installed when missing; MODSHOP_SKIP_BROWSER=1 skips them)
chromium:
	@./scripts/ensure-chromium

## promtool: Debian's prometheus package for promtool, which checks docs/observability/alerts.yml in make test (installed when missing; MODSHOP_SKIP_PROMTOOL=1 skips that check)
promtool:
	@./scripts/ensure-promtool

# Jaeger v2 (its cmd/jaeger), built from tools/jaeger's own go.mod: a tool
# beside the shop, never part of it, and not needed by make test.
JAEGER := bin/jaeger

$(JAEGER): tools/jaeger/go.mod tools/jaeger/go.sum
	@echo "building Jaeger v2 from tools/jaeger (the first build compiles a few hundred packages: minutes)"
	cd tools/jaeger && $(GO) build -o $(CURDIR)/$(JAEGER) github.com/jaegertracing/jaeger/cmd/jaeger

## jaeger: build and run Jaeger v2 (bin/jaeger) in the foreground, traces in memory: OTLP on 127.0.0.1:4317 (gRPC) and :4318 (HTTP), the query API on http://127.0.0.1:16686 (this build has no UI assets); run the shop beside it with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (docs/observability.md)
jaeger: $(JAEGER)
	./$(JAEGER) --config tools/jaeger/config.yaml

## trace-demo: one order followed in Jaeger: starts Jaeger when it is not running (left running), runs the shop traced into it, places an order and finds its trace through Jaeger's query API, printing its services and span count (docs/observability.md)
trace-demo: postgres-binaries build $(JAEGER)
	./scripts/trace-demo

## lighthouse: Lighthouse (pinned in tools/lighthouse, installed there by npm ci) on the storefront's pages (home, search, product, cart, checkout, order) with a scripted session and cart, mobile and desktop presets, in Debian's chromium: prints each page's scores and layout shift, JSON reports in tmp/lighthouse; fails below 95 or at a shift of 0.1 (outside make test)
lighthouse: postgres-binaries chromium build tools/lighthouse/node_modules/.installed
	./scripts/lighthouse

tools/lighthouse/node_modules/.installed: tools/lighthouse/package-lock.json
	@command -v npm >/dev/null || { echo "make lighthouse needs Node.js (20.19 or later) and npm: apt-get install nodejs npm"; exit 1; }
	cd tools/lighthouse && npm ci --no-audit --no-fund
	@touch $@

## clean: remove bin/ (the binary and the installed tools)
clean:
	rm -rf bin
