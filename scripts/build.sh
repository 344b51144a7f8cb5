#!/usr/bin/env bash
# Configures and builds sluice into ${SLUICE_BUILD_DIR:-build}. Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SLUICE_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
# Two jobs: a Beast translation unit needs about 1 GB to compile.
cmake --build "$build" -j "${SLUICE_JOBS:-2}"
