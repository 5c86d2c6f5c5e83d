# Warren — the two commands of the README, plus a few for developers.
#   make run    install what is missing, build, start the suite on conf/example/warren.conf
#   make test   install what is missing, build, run every test through ctest
BUILD      ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CONF       ?= conf/example/warren.conf

.PHONY: all deps build run test test-asan fuzz bench bench-store bench-deps bench-compare clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@BUILD=$(BUILD) scripts/run-example.sh $(CONF)

# The integration tests mostly wait on sockets and timers: ctest runs twice as many
# as there are cores (TEST_JOBS), the longest first (COST in tests/CMakeLists.txt).
TEST_JOBS  ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) * 2 )))

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(TEST_JOBS)

# The whole suite again on an AddressSanitizer + UndefinedBehaviorSanitizer build
# (LeakSanitizer on), at -O1 as ASan advises; a report in any process fails its test
# (the harness reads the suites' logs, tests/integration/warren.py). The testssl.sh
# scans are left to `make test` (WARREN_TESTSSL=0): they check which protocols and
# ciphers are offered, which a sanitizer build does not change, and take 100 s of
# CPU; the TLS handshake tests all run here too.
test-asan:
	@scripts/deps.sh
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
	       -DWARREN_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && WARREN_TESTSSL=0 ASAN_OPTIONS=detect_leaks=1:$(ASAN_OPTIONS) \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:$(UBSAN_OPTIONS) \
	    ctest --output-on-failure -j $(TEST_JOBS)

# store: durable deliveries/s (1 and 16 writers, 4 and 100 KB, 1 and 10 recipients)
# beside the disk's fsync rate; BENCH_SECONDS per case, about a minute in all
BENCH_SECONDS ?= 4
# libFuzzer targets of tests/fuzz, FUZZ_SECONDS (default 60) each, in build-fuzz/
fuzz:
	@scripts/deps.sh
	@scripts/fuzz.sh

# bench: the store bench, then Warren beside Postfix + Dovecot (bench/compare.py:
# installs the peers with bench/deps.sh, runs as root, BENCH_SCALE=0.05 for a quick
# check; docs/performance.md). Neither is part of `make test`.
bench: bench-store bench-compare

bench-store: build
	@$(BUILD)/bench/store -s $(BENCH_SECONDS)

bench-deps:
	@bench/deps.sh

bench-compare: build bench-deps
	@BENCH_BUILD=$(BUILD) /usr/bin/python3 bench/compare.py

clean:
	rm -rf $(BUILD) build-asan build-fuzz
