#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang into build-fuzz/ and runs
# each for FUZZ_SECONDS (default 60), up to FUZZ_JOBS (default: the core count) at
# a time. Seeds: tests/fuzz/corpus/<target>/ (plus tests/unit/data/mime for
# fuzz-mime); what a run learns stays in build-fuzz/corpus/<target>/. A crash, leak
# or timeout leaves its input in build-fuzz/artifacts/ and fails the run.
#   scripts/fuzz.sh                  every target
#   scripts/fuzz.sh fuzz-mime        one target
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
BUILD=build-fuzz

cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DWARREN_FUZZ=ON >/dev/null
cmake --build "$BUILD" --target fuzzers -j "$JOBS" >/dev/null

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in "$BUILD"/fuzz/fuzz-*; do targets+=("$(basename "$f")"); done
fi

mkdir -p "$BUILD/artifacts"
# libConfuse 3.3 leaks a few bytes on some syntax errors (a function call without
# commas): not ours to fix, so its own allocations are not reported.
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
run_one() {
  local t=$1 corpus="$BUILD/corpus/$1"
  mkdir -p "$corpus"
  local seeds=()
  [ -d "tests/fuzz/corpus/$t" ] && seeds+=("tests/fuzz/corpus/$t")
  [ "$t" = fuzz-mime ] && seeds+=("tests/unit/data/mime")
  if "$BUILD/fuzz/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t-" \
       "$corpus" "${seeds[@]}" >"$BUILD/$t.log" 2>&1; then
    echo "fuzz: $t: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$BUILD/$t.log" | grep -o '[0-9]*$') runs in ${SECONDS_EACH}s)"
  else
    echo "fuzz: $t: FAILED — see $BUILD/$t.log and $BUILD/artifacts/"
    tail -40 "$BUILD/$t.log"
    return 1
  fi
}

failed=0
pids=()
names=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  names+=("$t")
  if [ ${#pids[@]} -ge "$JOBS" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
if [ $failed -ne 0 ]; then
  echo "fuzz: some targets failed"
  exit 1
fi
echo "fuzz: ${#targets[@]} passed, 0 failed"
