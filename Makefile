# modshop: `make run` runs the shop, `make test` passes the tests.
GO      ?= go
BIN     := bin/modshop
PKGS    := ./...

.PHONY: run build test fuzz lint fmt vet bench bench-users bench-products bench-bus bench-chain bench-orders bench-topologies clean postgres-binaries chromium rabbitmq

## run: build and run the shop (embedded PostgreSQL in ./.data unless MODSHOP_DATABASE_URL is set; demo catalog when empty)
run: postgres-binaries build
	./$(BIN) serve --seed-demo

## build: compile the single binary into bin/modshop
build:
	$(GO) build -o $(BIN) .

## test: every test, with the race detector, against TEST_DATABASE_URL or an embedded PostgreSQL; the web UI in headless Chromium; the rabbitmq bus transport against TEST_AMQP_URL or the local RabbitMQ
test: postgres-binaries chromium rabbitmq
	$(GO) test -race -count=1 -p 2 -timeout 20m $(PKGS)

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

fmt:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

## bench: every benchmark; each prints its figures beside pgbench measured in the same run
bench: bench-users bench-products bench-bus bench-chain bench-orders bench-topologies

## bench-users: log-in and /users/me requests/s against pgbench select-only tps
bench-users: postgres-binaries
	$(GO) test -run '^$$' -bench BenchmarkUsers -benchtime 1x -timeout 10m ./app/bench/

## bench-products: GET /products/{id} and search requests/s against pgbench select-only tps
bench-products: postgres-binaries
	$(GO) test -run '^$$' -bench BenchmarkProducts -benchtime 1x -timeout 10m ./app/bench/

## bench-orders: the saga under fixed-rate load: confirmed orders/s against pgbench TPC-B, latencies, invariants
bench-orders: postgres-binaries
	$(GO) test -run '^$$' -bench BenchmarkOrders -benchtime 1x -timeout 15m ./app/bench/

## bench-topologies: the saga in each topology (one binary; four processes on one database; four on four databases with RabbitMQ), one run: capacity, confirmed orders/s and placed→confirmed latency at one rate, against pgbench TPC-B; invariants
bench-topologies: postgres-binaries rabbitmq
	$(GO) test -run '^$$' -bench BenchmarkTopologies -benchtime 1x -timeout 15m ./app/bench/

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

clean:
	rm -rf bin
