#!/usr/bin/env bash
# The sluice benchmark (bench/README.md). Installs what it needs (scripts/setup.sh bench),
# builds a Release tree, then measures, one after the other under the same load: the direct
# Beast baseline, sluice with 1 gateway + 1 worker and + 2 workers, and the Channels peers
# (uvicorn, Daphne) when installed; in a full run also how sluice scales. Prints a markdown
# table and writes bench/results/<timestamp>.{json,md,svg}. Figures are reported, never
# asserted: it fails only on a broken setup.
#
#   bench/run.sh [--duration SECS] [--smoke] [--only http|ws|memory|scaling] [--peers]
#                [--no-peers] [--idle-sockets N] [--keep-logs] [--no-build]
#                [--compare-build DIR]
#
#   --duration SECS   seconds per measured figure (default 10)
#   --smoke           a few seconds in all: 1 s figures, 200 held sockets, no peers, no scaling
#   --only FIGURE     just HTTP, WebSocket echo, memory, or the scaling runs
#   --peers           install the Channels peers first (scripts/setup.sh peers)
#   --no-peers        leave the peers out even when installed
#   --idle-sockets N  WebSockets held for the memory figure (default 2000)
#   --keep-logs       keep the servers' logs (kept anyway when something fails)
#   --no-build        use the binaries in SLUICE_BUILD_DIR as they are (e.g. CI's own tree for
#                     --smoke, whose figures do not matter), without configuring or building
#   --compare-build DIR
#                     also run sluice 1+1 from another build tree (say, a Release build of
#                     the commit before a change), in the same run, under the same load
#
# SLUICE_BUILD_DIR (default build-release) is the Release tree; SLUICE_JOBS its build jobs.
set -euo pipefail
cd "$(dirname "$0")/.."

groups=(bench)
args=()
build_it=1
while (($#)); do
  case "$1" in
    --peers) groups+=(peers) ;;
    --no-build) build_it=0 ;;
    --smoke | --no-peers | --keep-logs) args+=("$1") ;;
    --duration | --only | --idle-sockets | --compare-build)
      if (($# < 2)); then
        echo "bench: $1 needs a value" >&2
        exit 2
      fi
      args+=("$1" "$2")
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
      exit 0
      ;;
    *)
      echo "bench: unknown argument '$1' (see bench/run.sh --help)" >&2
      exit 2
      ;;
  esac
  shift
done

scripts/setup.sh "${groups[@]}"
build=${SLUICE_BUILD_DIR:-build-release}
if ((build_it)); then
  # Nice: the build yields to whatever else the machine is doing. Tests are not built here.
  SLUICE_BUILD_DIR=$build CMAKE_BUILD_TYPE=Release nice -n 10 scripts/build.sh -DBUILD_TESTING=OFF
fi

# Each held socket is a descriptor in the load generator and in the server: everything
# started from here gets the hard limit.
ulimit -n "$(ulimit -Hn)"

# The driver (standard library only) starts every process itself and stops them all however
# it ends: on SIGINT, SIGTERM or SIGHUP it stops them before exiting, and should it be killed
# outright they get SIGTERM from the kernel (PR_SET_PDEATHSIG). Exec'd, so a signal sent to
# this script reaches it. The Debian interpreter, whatever python3 PATH finds: the peers'
# packages install into it.
exec /usr/bin/python3 bench/bench.py --build-dir "$build" "${args[@]}"
