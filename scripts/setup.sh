#!/usr/bin/env bash
# Installs the Debian 12 packages sluice builds and tests with; skips what is installed.
# Optional groups named as arguments are installed as well:
#   tests  what the test suite needs beyond the build (scripts/test.sh): pytest, the fuzzing
#          toolchain, Redis for the channel-layer tests, Chromium and Node for the browser test
#   bench  the benchmark's load generator and plotter (bench/run.sh)
#   peers  the Python ASGI servers the benchmark compares against (bench/run.sh --peers)
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config curl git clang-format clang-tidy
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libboost1.81-dev libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev libhiredis-dev
  libtcmalloc-minimal4 # the programs' allocator (CMakeLists.txt: SLUICE_TCMALLOC)
  python3
)

tests=0
for group in "$@"; do
  case "$group" in
    tests)
      tests=1
      packages+=(python3-pytest python3-websockets chromium)
      # The Redis channel layer's tests: a real server, and channels_redis to talk to it.
      packages+=(redis-server python3-channels-redis python3-msgpack)
      packages+=(clang libclang-rt-14-dev llvm) # fuzzing: libFuzzer, llvm-symbolizer
      # Node and npm count when installed by other means: NodeSource's nodejs package includes
      # npm and conflicts with Debian's.
      command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
      # k8s/check.sh: YAML, a gRPC health client for the probes, certificates for link TLS.
      packages+=(python3-yaml python3-grpcio openssl)
      ;;
    bench) packages+=(wrk gnuplot-nox) ;;
    peers) packages+=(python3-uvicorn python3-daphne python3-django-channels) ;;
    *)
      echo "setup: unknown group '$group' (groups: tests, bench, peers)" >&2
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

# The browser test's npm packages, as locked: installed once, and again when the lock changed.
browser_tests="$(dirname "$0")/../tests/browser"
lock=$browser_tests/package-lock.json
if ((tests)) && [[ ! $browser_tests/node_modules/.package-lock.json -nt $lock ]]; then
  echo "setup: npm ci in tests/browser"
  npm ci --prefix "$browser_tests" --no-audit --no-fund --loglevel=error >/dev/null
fi
