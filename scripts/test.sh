#!/usr/bin/env bash
# The test command: installs what is missing, then runs the CI stages, each in its own build
# directory, and prints the wall time of each:
#
#   normal  build (warnings are errors), static checks, every test: unit + e2e,     (build/)
#           and a smoke run of the benchmark (bench/run.sh --smoke)
#   asan    ASan + UBSan build: every test, unit + e2e; any report fails           (build-asan/)
#   tsan    ThreadSanitizer build: unit tests + the e2e tests marked `tsan`        (build-tsan/)
#   fuzz    libFuzzer targets in fuzz/, corpus replay + SLUICE_FUZZ_SECONDS each   (build-fuzz/)
#
#   scripts/test.sh                 all stages, in this order
#   scripts/test.sh asan tsan       only these
#
# Every stage runs even when an earlier one failed; the exit status is 1 if any failed.
# Environment: SLUICE_JOBS (build jobs, 2), SLUICE_FUZZ_SECONDS (60 per target),
# SLUICE_TEST_SLOWDOWN (3 for sanitizer e2e runs: multiplies the fixtures' waits),
# SLUICE_SKIP_LONG (asan: 0, runs the flood test; 1 skips it), SLUICE_BUILD_DIR (the normal
# stage's build directory, build).
set -euo pipefail
cd "$(dirname "$0")/.."

all=(normal asan tsan fuzz)
stages=("$@")
((${#stages[@]})) || stages=("${all[@]}")
for stage in "${stages[@]}"; do
  [[ " ${all[*]} " == *" $stage "* ]] || {
    echo "test.sh: unknown stage '$stage' (stages: ${all[*]})" >&2
    exit 2
  }
done

scripts/setup.sh tests

supp=$PWD/tests/sanitizers
suppressions() { [[ -f $supp/$1.supp ]] && echo "suppressions=$supp/$1.supp:" || true; }
# Any sanitizer report fails: ASan/UBSan/LSan abort the process (a unit test or a server in the
# e2e suite, whose teardown also looks for reports on its stderr). TSan reports every race and
# then exits 66 (halt_on_error=0), so one run shows them all.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:check_initialization_order=1"
export UBSAN_OPTIONS="$(suppressions ubsan)print_stacktrace=1:halt_on_error=1:abort_on_error=1"
export LSAN_OPTIONS="$(suppressions lsan)print_suppressions=0"
export TSAN_OPTIONS="$(suppressions tsan)halt_on_error=0:exitcode=66:second_deadlock_stack=1:print_suppressions=0"

stage_normal() {
  scripts/build.sh -DSLUICE_WERROR=ON -DSLUICE_SANITIZE=
  scripts/lint.sh
  ctest --test-dir "${SLUICE_BUILD_DIR:-build}" --output-on-failure -j 2
  # The benchmark's every path, in a few seconds, on this tree: figures reported, not judged.
  SLUICE_BUILD_DIR=${SLUICE_BUILD_DIR:-build} bench/run.sh --smoke --no-build
}

# Sanitizer builds: not -Werror (GCC's -Wmaybe-uninitialized misfires under instrumentation;
# the normal stage holds the warnings line).
# The asan stage also runs the long flood test (about as fast as in the normal build): volume
# through every bounded queue is where lifetime bugs show.
stage_asan() {
  SLUICE_BUILD_DIR=build-asan scripts/build.sh -DSLUICE_SANITIZE=address
  SLUICE_TEST_SLOWDOWN=${SLUICE_TEST_SLOWDOWN:-3} SLUICE_SKIP_LONG=${SLUICE_SKIP_LONG:-0} \
    ctest --test-dir build-asan --output-on-failure -j 2
}

stage_tsan() {
  SLUICE_BUILD_DIR=build-tsan scripts/build.sh -DSLUICE_SANITIZE=thread
  # The e2e test here is the subset marked `tsan` (see tests/CMakeLists.txt).
  SLUICE_TEST_SLOWDOWN=${SLUICE_TEST_SLOWDOWN:-3} \
    ctest --test-dir build-tsan --output-on-failure -j 2
}

stage_fuzz() {
  scripts/fuzz.sh all "${SLUICE_FUZZ_SECONDS:-60}"
}

summary=()
failed=0
started_all=$SECONDS
for stage in "${stages[@]}"; do
  echo "=== test.sh: stage $stage ==="
  started=$SECONDS
  # A subshell outside any condition, so `set -e` holds inside the stage.
  set +e
  (
    set -e
    "stage_$stage"
  )
  rc=$?
  set -e
  if ((rc == 0)); then result=passed; else result=FAILED failed=1; fi
  line=$(printf '%-7s %-6s %4d s' "$stage" "$result" $((SECONDS - started)))
  summary+=("$line")
  echo "=== test.sh: stage $line ==="
done
echo "=== test.sh: summary (wall time) ==="
printf '  %s\n' "${summary[@]}"
echo "  total          $((SECONDS - started_all)) s"
exit "$failed"
