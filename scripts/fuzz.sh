#!/usr/bin/env bash
# Fuzzing with libFuzzer: builds the targets in fuzz/ with clang into
# ${SLUICE_FUZZ_BUILD_DIR:-build-fuzz}, replays each seed corpus, then fuzzes each target for a
# bounded time.
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]       (defaults: all, 60 seconds per target)
#
# Each run starts from a temporary copy of fuzz/corpus/TARGET/ (the tree stays clean; inputs
# the run found are dropped). A crash, leak, timeout or out-of-memory input is saved as
# fuzz/crashes/TARGET/<kind>-<sha1> and the script exits 1 after the remaining targets ran.
# Reproduce one with: build-fuzz/fuzz/TARGET fuzz/crashes/TARGET/crash-<sha1>
# Once fixed, move the input into fuzz/corpus/TARGET/ so ctest replays it from then on.
# Limits (environment): FUZZ_MAX_LEN (4096 bytes), FUZZ_TIMEOUT (10 s for one input),
# FUZZ_RSS_LIMIT_MB (2048).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-all}
seconds=${2:-60}
build=${SLUICE_FUZZ_BUILD_DIR:-build-fuzz}
max_len=${FUZZ_MAX_LEN:-4096}
timeout=${FUZZ_TIMEOUT:-10}
rss_limit=${FUZZ_RSS_LIMIT_MB:-2048}

CXX=${FUZZ_CXX:-clang++} cmake -S . -B "$build" -G Ninja -DSLUICE_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "${SLUICE_JOBS:-2}" --target fuzz_targets

mapfile -t targets <"$build/fuzz/targets.txt"
if [[ $target != all ]]; then
  if ! printf '%s\n' "${targets[@]}" | grep -qx -- "$target"; then
    echo "fuzz: no target '$target' (targets: ${targets[*]})" >&2
    exit 2
  fi
  targets=("$target")
fi

# Every seed input (and every fixed crash moved into the corpus) must run clean first.
ctest --test-dir "$build" --output-on-failure

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for name in "${targets[@]}"; do
  corpus="$work/$name"
  crashes="fuzz/crashes/$name"
  mkdir -p "$corpus" "$crashes"
  cp -R "fuzz/corpus/$name/." "$corpus/"
  args=(-max_total_time="$seconds" -max_len="$max_len" -timeout="$timeout"
    -rss_limit_mb="$rss_limit" -artifact_prefix="$crashes/" -print_final_stats=1)
  [[ -f fuzz/dicts/$name.dict ]] && args+=(-dict="fuzz/dicts/$name.dict")
  log="$work/$name.log"
  started=$SECONDS
  echo "fuzz: $name for ${seconds} s (max_len $max_len, timeout $timeout s, rss $rss_limit MB)"
  if "$build/fuzz/$name" "${args[@]}" "$corpus" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz: $name clean: $runs runs ($rate/s), $cov, corpus $(ls "$corpus" | wc -l) inputs," \
      "$((SECONDS - started)) s"
  else
    failed+=("$name")
    # The report: from the sanitizer's or libFuzzer's first line to the saved input.
    sed -n '/^==[0-9]*==\|^FUZZ_CHECK\|Assertion\|runtime error/,$p' "$log" |
      grep -v '^INFO:\|^#[0-9]' | head -80
    echo "fuzz: $name FAILED after $((SECONDS - started)) s; reproduce with:" >&2
    grep -o 'Test unit written to .*' "$log" | cut -d' ' -f5- |
      while read -r input; do echo "  $build/fuzz/$name $input" >&2; done
  fi
  rmdir "$crashes" 2>/dev/null || true  # keep the folder only when it holds an input
done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} target(s) clean"
