#!/usr/bin/env bash
# Profiles sluice under load with perf (Debian linux-perf): one gateway and one demo worker
# from a build tree, loaded by wrk (GET /hello) or the WebSocket echo generator, while
# `perf record` samples each process (cpu-clock: these VMs have no hardware counters). Writes
# the flat profile of each process (self time by symbol, and by shared object) to
# bench/results/profile-<timestamp>-<load>-{gateway,worker}.txt and prints the top of each.
#
#   bench/profile.sh [http|ws] [SECONDS] [THREADS]   (defaults: http, 10, the processes' own)
#
# THREADS is passed as --threads to the gateway and the worker. With SLUICE_PROFILE_CPU=N the
# gateway and the worker (every thread of both) run on CPU N and the load on the other CPUs:
# the bench's "one core" column. Besides the profiles, it prints each thread's CPU time per
# request or message, by thread name (loops, gRPC's callback threads, the rest), from
# /proc/<pid>/task/*/stat across the load.
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
server_cpu=()
load_cpu=()
if [[ -n ${SLUICE_PROFILE_CPU:-} ]]; then
  others=$(python3 -c "import os; print(','.join(str(c) for c in sorted(os.sched_getaffinity(0)) if c != $SLUICE_PROFILE_CPU))")
  server_cpu=(taskset -c "$SLUICE_PROFILE_CPU")
  load_cpu=(taskset -c "$others")
fi
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

start worker sluice-worker "${server_cpu[@]}" "$build/demo/sluice-demo-worker" --listen 127.0.0.1:0 "${threads[@]}"
worker_pid=${pids[-1]}
start gateway sluice-gateway "${server_cpu[@]}" "$build/gateway/sluice-gateway" --listen 127.0.0.1:0 \
  --workers "127.0.0.1:$port" "${threads[@]}"
gateway_pid=${pids[-1]}
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/hello" >/dev/null && break
  sleep 0.05
done

# Warm up, then sample both processes for the measured run.
case $load in
  http)
    "${load_cpu[@]}" wrk -t1 -c50 -d2s "http://127.0.0.1:$port/hello" >/dev/null
    run=("${load_cpu[@]}" wrk -t1 -c50 "-d${seconds}s" --latency "http://127.0.0.1:$port/hello")
    ;;
  ws)
    echo_load=("${load_cpu[@]}" "$build/bench/sluice-bench-ws" echo
      --url "ws://127.0.0.1:$port/ws/echo" --connections 50 --size 32 --warmup 0)
    "${echo_load[@]}" --duration 2 >/dev/null
    run=("${echo_load[@]}" --duration "$seconds")
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
# CPU ticks of every thread: "<pid> <thread name> <utime+stime>" lines.
ticks() {
  for pid in "$gateway_pid" "$worker_pid"; do
    for stat in /proc/"$pid"/task/*/stat; do
      sed -E "s/^[0-9]+ \((.*)\) (.*)$/$pid \1\t\2/" "$stat" 2>/dev/null |
        awk -F'\t' '{ split($2, f, " "); print $1 "\t" f[12] + f[13] }'
    done
  done
}
ticks >"$work/ticks-before"
"${run[@]}" | tee "$work/load.txt"
ticks >"$work/ticks-after"
wait "${perfs[@]}" || true

# Completed requests (wrk) or messages (the echo's JSON) during the load, and each thread's
# share of them. Threads that ended during the load are not counted.
python3 - "$work" "$gateway_pid" "$worker_pid" "$(getconf CLK_TCK)" <<'PY' | tee "$work/threads.txt"
import json, re, sys, collections
work, gateway, worker, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
text = open(f"{work}/load.txt").read()
m = re.search(r"^\s*(\d+) requests in", text, re.M)
done = int(m.group(1)) if m else json.loads(text.strip().splitlines()[-1])["messages"]
def read(name):
    out = collections.Counter()
    for line in open(f"{work}/{name}"):
        key, ticks = line.rstrip("\n").rsplit("\t", 1)
        out[key] += int(ticks)
    return out
before, after = read("ticks-before"), read("ticks-after")
print(f"## CPU per request or message by thread ({done} done)")
for pid, label in ((gateway, "gateway"), (worker, "worker")):
    for key in sorted(after, key=lambda k: before[k] - after[k]):
        if key.split(" ", 1)[0] == pid and after[key] > before[key]:
            us = (after[key] - before[key]) / hz / done * 1e6
            print(f"{label:8} {key.split(' ', 1)[1]:18} {us:6.2f} us")
PY

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
    cat "$work/threads.txt"
  } >"$file"
  echo "== $file"
  head -25 "$file"
done
