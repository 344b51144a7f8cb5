#!/usr/bin/env bash
# The quick start: installs what is missing, builds, and runs a gateway plus the demo worker
# on this machine until Ctrl-C. PORT (default 8000) is the client port, WORKER_PORT (default
# 8001) the worker's link port, HOST (default 127.0.0.1) the address to listen on; the admin
# ports (metrics, health) are ADMIN_PORT (default 9100) and ADMIN_PORT + 1 for the worker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build=${SLUICE_BUILD_DIR:-build}
host=${HOST:-127.0.0.1}
port=${PORT:-8000}
worker_port=${WORKER_PORT:-8001}
admin_port=${ADMIN_PORT:-9100}

pids=()
stop() {
  trap - INT TERM EXIT
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  echo "demo: stopped"
}
trap stop INT TERM EXIT

"$build/demo/sluice-demo-worker" --listen "127.0.0.1:$worker_port" \
  --admin "127.0.0.1:$((admin_port + 1))" &
pids+=($!)
"$build/gateway/sluice-gateway" --listen "$host:$port" --workers "127.0.0.1:$worker_port" \
  --admin "127.0.0.1:$admin_port" &
pids+=($!)

base="http://$host:$port"
for _ in $(seq 100); do
  curl -fs "$base/hello" >/dev/null 2>&1 && break
  sleep 0.1
done
cat <<MSG

sluice is up: gateway on $host:$port, demo worker on 127.0.0.1:$worker_port.
  curl $base/hello
  curl --data-binary @README.md $base/echo
  curl -N $base/sse
  curl $base/scope
  WebSocket echo:  ws://$host:$port/ws/echo   (scope: ws://$host:$port/ws/scope)
  Metrics:         curl 127.0.0.1:$admin_port/metrics   (worker: 127.0.0.1:$((admin_port + 1))/metrics)
Ctrl-C stops both.

Chat (open in a browser, in two tabs): $base/

MSG
# Ends when either process exits, or on Ctrl-C.
wait -n "${pids[@]}"
