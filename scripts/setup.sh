#!/usr/bin/env bash
# Installs the Debian 12 packages sluice builds and tests with; skips what is installed.
# Optional groups named as arguments are installed as well:
#   bench  the benchmark's load generator and plotter (bench/run.sh)
#   peers  the Python ASGI servers the benchmark compares against (bench/run.sh --peers)
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config curl git clang-format clang-tidy
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libboost1.81-dev libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  python3 python3-pytest python3-websockets
  libhiredis-dev redis-server python3-channels-redis python3-msgpack  # the Redis channel layer
  clang libclang-rt-14-dev llvm  # fuzzing: libFuzzer, and llvm-symbolizer for its stacks
)

for group in "$@"; do
  case "$group" in
    bench) packages+=(wrk gnuplot-nox) ;;
    peers) packages+=(python3-uvicorn python3-daphne python3-django-channels) ;;
    *)
      echo "setup: unknown group '$group' (groups: bench, peers)" >&2
      exit 2
      ;;
  esac
done

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
