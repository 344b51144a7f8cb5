#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the static checks, and runs every
# test (unit tests and the end-to-end suite against real gateway and worker processes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh -DSLUICE_WERROR=ON
scripts/lint.sh
ctest --test-dir "${SLUICE_BUILD_DIR:-build}" --output-on-failure -j 2
