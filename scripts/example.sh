#!/usr/bin/env bash
# Installs a sluice build into a private prefix, then configures, builds and tests the
# out-of-tree example (examples/chat) against it, as a user's project would be.
#   scripts/example.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
prefix=$build/example/install
out=$build/example/build
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S examples/chat -B "$out" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$out" -j "${SLUICE_JOBS:-2}"
ctest --test-dir "$out" --output-on-failure
