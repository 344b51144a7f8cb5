#!/usr/bin/env bash
# The static checks CI enforces on the project's own sources: clang-format (.clang-format)
# and clang-tidy (.clang-tidy, curated). Needs a configured build for compile_commands.json.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SLUICE_BUILD_DIR:-build}

mapfile -t sources < <(git ls-files '*.cc' '*.h')
clang-format --dry-run --Werror "${sources[@]}"

mapfile -t units < <(git ls-files '*.cc' | grep -v '^tests/')
log=$(mktemp)
if ! run-clang-tidy-14 -p "$build" -quiet -j "${SLUICE_JOBS:-2}" "${units[@]}" >"$log" 2>&1; then
  grep -E "(warning|error):" "$log" || tail -50 "$log"
  echo "lint: clang-tidy found problems" >&2
  exit 1
fi
echo "lint: clang-format and clang-tidy clean (${#units[@]} files)"
