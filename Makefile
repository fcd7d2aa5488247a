# The front door. `make up` brings the local system up, `make test` runs every test.
# Everything builds with CMake under build/ (and build-asan/ for the sanitizer run).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 300
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all build deps test test-release test-asan test-fuzz fuzz fuzz-build unit up down status logs bench bench-gxp history format \
        compose-up compose-down \
        format-check clean install

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGF_SANITIZE=ON $(CMAKE_ARGS)

# The whole suite twice: as shipped, then under AddressSanitizer + UBSan (the last summary
# line is the sanitizer run's), and between them the fuzz targets for a bounded time. All must
# pass.
test: deps
	@$(MAKE) --no-print-directory test-release
	@$(MAKE) --no-print-directory test-fuzz
	@$(MAKE) --no-print-directory test-asan

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j 2

test-asan: $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 2

# The fuzz targets (tests/fuzz): a clang build of their own, only what they need.
$(FUZZ_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DGF_FUZZ=ON -DGF_TESTS=OFF \
	  $(CMAKE_ARGS)

fuzz-build: $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets

# Each fuzz target for GF_FUZZ_SECONDS (10) after replaying its regressions; the executions
# of each are printed last.
test-fuzz: fuzz-build
	cd $(FUZZ_BUILD) && { ctest --output-on-failure -j 2 -L fuzz; s=$$?; \
	  cat fuzz-run/*/summary 2>/dev/null; exit $$s; }

# Each fuzz target for FUZZ_SECONDS; inputs that add coverage join tests/fuzz/corpus.
fuzz: deps fuzz-build
	@bash tests/fuzz/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

up: deps build
	@bash scripts/stack.sh up

down:
	@bash scripts/stack.sh down

status:
	@bash scripts/stack.sh status

logs:
	@bash scripts/stack.sh logs $(SERVICE)

# The whole system in containers (deploy/compose/docker-compose.yml) on 127.0.0.1:30080: a
# Docker engine of its own when none answers, images built from Debian's packages, up and
# ready (scripts/compose.sh). compose-down keeps the data (VOLUMES=1 drops it too).
compose-up: deps
	@bash scripts/compose.sh up

compose-down:
	@bash scripts/compose.sh down $(if $(VOLUMES),--volumes)

# The benchmark suite: the whole system through nginx beside its SQL floor, auction bids and
# the settlement of 1,000 auctions that end together (bench/suite.sh).
bench: deps build
	@bash bench/suite.sh

# The chaos test: load through nginx (buys, add-gxps, auctions of 5-10 s with many bidders;
# with Idempotency-Key retries and resent correlation ids) while processes are killed and
# paused, clusters restarted, broker connections closed, network links cut and delayed
# (tests/harness/netfault.sh: iptables, so as root) and failpoints fire in every window of the
# protocol and of the auction saga; then every invariant checked (tests/chaos/chaos.sh). CHAOS_SEED
# (random when unset) replays a run's operations and faults; CHAOS_SECONDS, CHAOS_CLIENTS.
CHAOS_SECONDS ?= 120
CHAOS_CLIENTS ?= 16
.PHONY: chaos
chaos: deps build
	CHAOS_SECONDS=$(CHAOS_SECONDS) CHAOS_CLIENTS=$(CHAOS_CLIENTS) GF_BUILD_DIR=$(abspath $(BUILD)) \
	  bash tests/chaos/chaos.sh

# The soak: 30 minutes (SOAK_SECONDS) of open-loop buys and add-gxps at half the peak against
# a stack of its own, disk use, memory and latency sampled every 30 s and plotted (bench/soak.sh).
# SOAK_ENV="VAR=value ..." reaches every service: short retention periods, so that the run
# reaches its steady state. Not part of `make test`.
.PHONY: soak
soak: deps build
	GF_BUILD_DIR=$(abspath $(BUILD)) bash bench/soak.sh

# ROWS rows of history (users, their add-gxp, its decision replicated to gxp-db, its event) added
# to the stack `make up` started, through the same tables and replication as the real thing
# (bench/load_rows.sh; in chunks, each replicated before the next), so that anyone can grow a
# local system and watch it stay fast. The stack's ports and postgres's password are those
# scripts/stack.sh used (the same GF_*_PORT and GF_STATE_DIR, default .gf).
ROWS ?=
history:
	@[ -n "$(ROWS)" ] || { echo "make history ROWS=N: the rows of history to add (e.g. ROWS=1000000)" >&2; exit 2; }
	@bash scripts/stack.sh status | awk '$$1 ~ /-db$$/ && $$NF != "ok" { bad = 1; print "history: " $$1 " is not up: make up first" > "/dev/stderr" } END { exit bad }'
	PGPASSFILE=$${GF_STATE_DIR:-$(CURDIR)/.gf}/secrets/pgpass \
	  BACKEND_DB_PORT=$${GF_BACKEND_DB_PORT:-30541} GXP_DB_PORT=$${GF_GXP_DB_PORT:-30542} \
	  EVENTLOG_DB_PORT=$${GF_EVENTLOG_DB_PORT:-30543} bash bench/load_rows.sh $(ROWS)

# gxp alone: TransactionPrepare over gRPC beside pgbench on gxp-db (bench/gxp_bench.c).
bench-gxp: deps build
	@bash bench/gxp.sh

# gf, the CLI, into $(DESTDIR)$(PREFIX)/bin.
install: build
	install -d "$(DESTDIR)$(PREFIX)/bin"
	install -m 0755 $(BUILD)/bin/gf "$(DESTDIR)$(PREFIX)/bin/gf"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
