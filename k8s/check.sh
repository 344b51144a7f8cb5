#!/usr/bin/env bash
# Checks k8s/ and docker/ without a cluster or a container engine, against a build's real
# binaries (ctest runs it as k8s_check; see docs/deploy.md, "What CI checks"):
#   1. `kubectl kustomize` renders overlays/dev, overlays/prod, and prod with the optional
#      components (podmonitor, link-tls);
#   2. every rendered object validates against the Kubernetes schemas, unknown fields
#      included (check/validate.mjs; its npm packages, as locked in check/, are installed
#      once under $SLUICE_K8S_CACHE, default ~/.cache/sluice-k8s-check);
#   3. check/check_manifests.py: pod security, Services, discovery, Redis, HPAs and the
#      adapter rules, PDBs, spread, NetworkPolicies, drain timings, memory sizing; every
#      container's args through the binary's --check-config; the binaries started with the
#      manifests' args and every probe answered;
#   4. check/selftest.py: mistakes made on purpose in the dev render, each of which step 3
#      must reject (so that a check that cannot fail shows up);
#   5. docker/check.py: the Dockerfiles against the repository and the binaries' libraries.
#   k8s/check.sh [BUILD_DIR]        (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
build=$(realpath "${1:-build}")
python=/usr/bin/python3

for tool in kubectl node npm openssl; do
  command -v "$tool" >/dev/null || {
    echo "k8s/check.sh: $tool is not installed (scripts/setup.sh tests installs what it can;" \
      "kubectl comes with the machine image)" >&2
    exit 1
  }
done
"$python" -c 'import yaml, grpc' 2>/dev/null || {
  echo "k8s/check.sh: $python lacks yaml or grpc (apt-get install python3-yaml python3-grpcio)" >&2
  exit 1
}

# The validator's packages, installed again only when the lock changed.
cache=${SLUICE_K8S_CACHE:-$HOME/.cache/sluice-k8s-check}
mkdir -p "$cache"
if ! cmp -s k8s/check/package-lock.json "$cache/package-lock.json" ||
  [[ ! -d $cache/node_modules ]]; then
  echo "k8s/check.sh: npm ci in $cache"
  cp k8s/check/package.json k8s/check/package-lock.json "$cache/"
  npm ci --prefix "$cache" --no-audit --no-fund --loglevel=error >/dev/null
fi
cp k8s/check/validate.mjs "$cache/"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# prod with every optional component, as an overlay of its own outside the tree.
mkdir "$out/prod-all"
rel=$(realpath --relative-to="$out/prod-all" "$repo/k8s")
cat >"$out/prod-all/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [$rel/overlays/prod]
components: [$rel/components/podmonitor, $rel/components/link-tls]
YAML

variants=()
for variant in dev prod prod-all; do
  dir=k8s/overlays/$variant
  [[ $variant == prod-all ]] && dir=$out/prod-all
  if ! kubectl kustomize "$dir" >"$out/$variant.yaml" 2>"$out/$variant.err"; then
    echo "FAIL kustomize $variant: $(cat "$out/$variant.err")"
    exit 1
  fi
  echo "ok   kustomize $variant: $(grep -c '^kind:' "$out/$variant.yaml") objects"
  variants+=("$variant=$out/$variant.yaml")
done

status=0
node "$cache/validate.mjs" "${variants[@]#*=}" || status=1
"$python" k8s/check/check_manifests.py --build "$build" "${variants[@]}" || status=1
"$python" k8s/check/selftest.py --build "$build" "$out/dev.yaml" || status=1
"$python" docker/check.py --build "$build" || status=1
if ((status == 0)); then echo "k8s/check.sh: passed"; else echo "k8s/check.sh: FAILED"; fi
exit $status
