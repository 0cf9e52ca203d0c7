# MantisDB -- top-level build.  Target names are part of the product
# (see README.md): every target depends on what it needs, so `make run` and
# `make test` work on a fresh clone.

GO        ?= go
BIN       := bin
CORE_LIB  := c-core/build/libmantisdb_core.a
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOFLAGS_RACE := -race -count=1
RUN_ARGS  ?=
FUZZ_SECONDS ?= 30
# Go fuzz targets: package:FuzzName pairs, each run for FUZZ_SECONDS.
GO_FUZZ   := ./go/codec:FuzzDecode ./go/wal:FuzzRecoverTail ./go/server:FuzzHandler ./go/resp:FuzzRESP ./go/resp:FuzzReaderDifferential ./go/resp:FuzzLimitScanSplit ./go/resp:FuzzLimitScanSplitUnauthed ./go/resp:FuzzLongDouble ./go/cluster:FuzzDecodeEntry
# Go fuzz targets that compare against the C core: run with -tags native.
GO_FUZZ_NATIVE := ./go/codec:FuzzDifferential

.PHONY: all deps build-core build build-native test test-c test-go sanitize fuzz \
	bench-core bench bench-full bench-go bench-tools bench-http run run-native run-cluster fmt-check vet clean

all: build build-native

# Installs missing Debian packages and Go modules (idempotent, fast when done).
deps:
	@./build.sh --deps-only

build-core: deps
	$(MAKE) -C c-core lib

$(BIN):
	@mkdir -p $(BIN)

build: deps | $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/mantisdb ./cmd/mantisdb

build-native: build-core | $(BIN)
	$(GO) build -tags native -ldflags "$(LDFLAGS)" -o $(BIN)/mantisdb-native ./cmd/mantisdb

# Every test: C unit and stress tests, then Go (pure and native) under -race.
test: test-c test-go

test-c: build-core
	$(MAKE) -C c-core test

# Each package once (go/resp three times: on its event loops, then with a
# goroutine per connection, then on the loops serving as under --sync
# always, where a waiting write suspends its client); then, with -tags
# native, only the packages whose build the tag changes
# (native-packages.sh); then the bench module's own tests.
test-go: build-core fmt-check vet
	$(GO) test $(GOFLAGS_RACE) ./...
	MANTISDB_TEST_RESP_LOOPS=-1 $(GO) test $(GOFLAGS_RACE) ./go/resp/
	MANTISDB_TEST_RESP_OFFLOAD=1 $(GO) test $(GOFLAGS_RACE) ./go/resp/
	$(GO) test $(GOFLAGS_RACE) -tags native $$(GO=$(GO) ./native-packages.sh)
	cd bench && $(GO) test $(GOFLAGS_RACE) ./...

fmt-check: deps
	@out="$$(gofmt -l go cmd bench 2>/dev/null)"; if [ -n "$$out" ]; then \
		echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: build-core
	$(GO) vet ./...
	$(GO) vet -tags native ./...

# C tests under ASan+UBSan, then under TSan.
sanitize: deps
	$(MAKE) -C c-core sanitize

# Every fuzz target (C libFuzzer and Go native fuzzing) for FUZZ_SECONDS each;
# scripts/go-fuzz.sh tells Go's -fuzztime deadline race from a finding.
fuzz: build-core
	$(MAKE) -C c-core fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)
	@set -e; for t in $(GO_FUZZ); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== go fuzz $$pkg $$fn ($(FUZZ_SECONDS)s)"; \
		GO=$(GO) scripts/go-fuzz.sh $$pkg $$fn $(FUZZ_SECONDS); done
	@set -e; for t in $(GO_FUZZ_NATIVE); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== go fuzz (native) $$pkg $$fn ($(FUZZ_SECONDS)s)"; \
		GO=$(GO) scripts/go-fuzz.sh $$pkg $$fn $(FUZZ_SECONDS) -tags native; done

# C micro-benchmarks against their baselines: the codec, the cache (beside
# a mutex+list LRU) and the other c-core/bench programs, then the skiplist
# beside a mutex-protected ordered map, a hash-table ceiling and the Rust
# crossbeam-skiplist crate (built here when cargo exists) at CORE_KEYS keys,
# CORE_REPS interleaved runs each, medians and the issue's ratios
# (c-core/bench/skiplist_table.sh).  On 2 cores the 1M table takes about 2.5
# minutes and the 10M one over an hour: CORE_KEYS=1000000 for the first only.
CORE_KEYS ?= 1000000 10000000
CORE_REPS ?= 3
CORE_OTHER_BENCHES = $(filter-out bench_skiplist,$(patsubst c-core/bench/%.c,%,$(wildcard c-core/bench/bench_*.c)))
bench-core: build-core
	$(MAKE) -C c-core bench BENCHES="$(CORE_OTHER_BENCHES)"
	$(MAKE) -C c-core build/bench/bench_skiplist
	@if command -v cargo >/dev/null; then \
		cargo build --release --quiet --manifest-path bench/peers/crossbeam/Cargo.toml || \
		echo "crossbeam-peer did not build: the crossbeam-skiplist column will be empty"; \
	else echo "cargo not found: the crossbeam-skiplist column will be empty"; fi
	@set -e; cd c-core && for n in $(CORE_KEYS); do \
		echo "== skiplist table, $$n keys, $(CORE_REPS) runs"; \
		sh bench/skiplist_table.sh $$n 2 $(CORE_REPS); done

# Go micro-benchmarks (testing.B), pure-Go and native side by side; the
# caches beside ristretto and otter at 1 and 2 threads (-cpu=1,2).
bench-go: build-core
	$(GO) test -tags native -run='^$$' -bench=. -benchmem $$($(GO) list -tags native ./go/... | grep -v '/go/cache$$')
	$(GO) test -tags native -run='^$$' -bench=. -benchmem -cpu=1,2 ./go/cache

# The benchmark suite (bench/, its own Go module so the peers' modules stay
# out of ours): MantisDB native and pure-Go beside bbolt, Pebble, Badger,
# ristretto, otter, crossbeam-skiplist, Redis; results, table and charts in
# bench/results/.  `bench` is the quick run (200k keys, ~6 min on 2 cores),
# `bench-full` the long one (1M and 10M keys).  BENCH_FLAGS adds flags.
BENCH_FLAGS ?=
bench-tools: build-native
	$(MAKE) -C c-core build/bench/bench_skiplist
	@if command -v cargo >/dev/null; then \
		cargo build --release --quiet --manifest-path bench/peers/crossbeam/Cargo.toml; \
	else echo "cargo not found: the crossbeam-skiplist rows will be skipped"; fi
	cd bench && $(GO) build -tags native -o ../$(BIN)/mantisbench ./cmd/mantisbench

bench: bench-tools
	cd bench && ../$(BIN)/mantisbench -mode quick $(BENCH_FLAGS)

bench-full: bench-tools
	cd bench && ../$(BIN)/mantisbench -mode full $(BENCH_FLAGS)

# HTTP load on both server builds side by side (wrk, 40 connections).
bench-http: build build-native
	bench/wrk/run.sh $(BIN)/mantisdb $(BIN)/mantisdb-native

run: build
	$(BIN)/mantisdb $(RUN_ARGS)

# Three nodes in cluster mode on loopback (deploy/run-cluster.sh,
# docs/CLUSTER.md); Ctrl-C stops them.
run-cluster: build
	deploy/run-cluster.sh $(BIN)/mantisdb

run-native: build-native
	$(BIN)/mantisdb-native $(RUN_ARGS)

clean:
	$(MAKE) -C c-core clean
	rm -rf $(BIN)
