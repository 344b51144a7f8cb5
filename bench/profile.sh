#!/usr/bin/env bash
# Profiles sluice under load with perf (Debian linux-perf): one gateway and one demo worker
# from a build tree, loaded by wrk (GET /hello) or the WebSocket echo generator, while
# `perf record` samples each process (cpu-clock: these VMs have no hardware counters). Writes
# the flat profile of each process (self time by symbol, and by shared object) to
# bench/results/profile-<timestamp>-<load>-{gateway,worker}.txt and prints the top of each.
#
#   bench/profile.sh [http|ws] [SECONDS] [THREADS]   (defaults: http, 10, the processes' own)
#
# THREADS is passed as --threads to the gateway and the worker.
#
# SLUICE_BUILD_DIR (default build-release) is the tree to profile; build it first (bench/run.sh
# builds it). Needs wrk and perf (scripts/setup.sh bench).
set -euo pipefail
cd "$(dirname "$0")/.."
load=${1:-http}
seconds=${2:-10}
threads=()
if [[ -n ${3:-} ]]; then threads=(--threads "$3"); fi
build=${SLUICE_BUILD_DIR:-build-release}
out=bench/results
stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Starts a server in the background; waits (bounded) for its "<banner> listening on" line
# and sets `port` to the port it names (not a command substitution: the server must be a
# child of this shell, so its pid is ours to profile and to stop).
start() {
  local name=$1 banner=$2
  shift 2
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 200); do
    if grep -q "^$banner listening on" "$work/$name.out"; then
      port=$(sed -n "s/^$banner listening on [^:]*:\([0-9]*\)$/\1/p" "$work/$name.out")
      return
    fi
    sleep 0.05
  done
  echo "profile: $name did not start" >&2
  cat "$work/$name.err" >&2
  exit 1
}

start worker sluice-worker "$build/demo/sluice-demo-worker" --listen 127.0.0.1:0 "${threads[@]}"
worker_pid=${pids[-1]}
start gateway sluice-gateway "$build/gateway/sluice-gateway" --listen 127.0.0.1:0 \
  --workers "127.0.0.1:$port" "${threads[@]}"
gateway_pid=${pids[-1]}
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/hello" >/dev/null && break
  sleep 0.05
done

# Warm up, then sample both processes for the measured run.
case $load in
  http)
    wrk -t1 -c50 -d2s "http://127.0.0.1:$port/hello" >/dev/null
    run=(wrk -t1 -c50 "-d${seconds}s" --latency "http://127.0.0.1:$port/hello")
    ;;
  ws)
    run=("$build/bench/sluice-bench-ws" echo --url "ws://127.0.0.1:$port/ws/echo"
      --connections 50 --size 32 --warmup 2 --duration "$seconds")
    ;;
  *)
    echo "profile: load is http or ws" >&2
    exit 2
    ;;
esac
# Context switches of every thread of a process so far.
switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'
}
declare -A switches_before
perfs=()
for name in gateway worker; do
  pid_var=${name}_pid
  switches_before[$name]=$(switches "${!pid_var}")
done
for name in gateway worker; do
  pid_var=${name}_pid
  perf record -e cpu-clock -F 999 -g -p "${!pid_var}" -o "$work/$name.data" \
    -- sleep "$((seconds + 2))" >/dev/null 2>&1 &
  perfs+=($!)
done
"${run[@]}" | tee "$work/load.txt"
wait "${perfs[@]}" || true

for name in gateway worker; do
  pid_var=${name}_pid
  file="$out/profile-$stamp-$load-$name.txt"
  {
    echo "# sluice $name under $load load ($seconds s, $(nproc) cores, $build)"
    echo "## self time by symbol"
    perf report -i "$work/$name.data" --stdio --no-children -g none --sort symbol \
      --percent-limit 0.8 2>/dev/null | grep -E '^ +[0-9]' | sed -E 's/[ -]+$//' || true
    echo "## self time by shared object"
    perf report -i "$work/$name.data" --stdio --no-children -g none --sort dso \
      --percent-limit 0.5 2>/dev/null | grep -E '^ +[0-9]' | sed -E 's/[ -]+$//' || true
    echo "## context switches (all threads, voluntary + involuntary) during the run"
    echo "$name: $(($(switches "${!pid_var}") - ${switches_before[$name]}))"
  } >"$file"
  echo "== $file"
  head -25 "$file"
done
