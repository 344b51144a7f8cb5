#!/usr/bin/env python3
"""Shows that check_manifests.py can fail: each mutation of a rendered overlay below is a
mistake the check exists for, and the check must reject it with the expected message.

    selftest.py --build BUILD_DIR RENDERED.yaml
"""

import argparse
import copy
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

CHECK = Path(__file__).resolve().parent / "check_manifests.py"


def find(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def container(objects, name):
    return find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


def set_arg(objects, name, flag, value):
    c = container(objects, name)
    c["args"] = [f"{flag}={value}" if a.startswith(flag + "=") else a for a in c["args"]]


def worker_policy(objects):
    return find(objects, "NetworkPolicy", "sluice-worker")["spec"]["ingress"][0]


# (what, mutation, expected text in the check's output, needs the processes started)
MUTATIONS = [
    ("readiness path the gateway does not serve",
     lambda o: container(o, "sluice-gateway")["readinessProbe"]["httpGet"].update(path="/ready"),
     "readinessProbe: GET :9100/ready → 404", True),
    ("gRPC probe on a port nothing binds",
     lambda o: container(o, "sluice-worker")["readinessProbe"]["grpc"].update(port=8002),
     "grpc port 8002 is bound by no flag", True),
    ("liveness probe on the client port's name",
     lambda o: container(o, "sluice-worker")["livenessProbe"]["httpGet"].update(port="link"),
     "livenessProbe: GET :8001/healthz", True),
    ("a misspelt flag", lambda o: set_arg(o, "sluice-gateway", "--drain-delay", "10") or
     container(o, "sluice-gateway")["args"].append("--drain-dealy=10"),
     "--check-config exited 2", False),
    ("an admin address that is a name",
     lambda o: set_arg(o, "sluice-worker", "--admin", "localhost:9101"),
     '--admin: "localhost" is not an IP address', False),
    ("grace period shorter than the drain",
     lambda o: find(o, "Deployment", "sluice-gateway")["spec"]["template"]["spec"].update(
         terminationGracePeriodSeconds=30), "does not fit terminationGracePeriodSeconds 30",
     False),
    ("a preStop sleep on top of the drain",
     lambda o: container(o, "sluice-worker").update(
         lifecycle={"preStop": {"sleep": {"seconds": 10}}}),
     "drain preStop 10 + --drain-timeout 25", False),
    ("worker Service with a virtual IP",
     lambda o: find(o, "Service", "sluice-worker")["spec"].pop("clusterIP"),
     "is not headless", False),
    ("workers dialled on another port than they listen on",
     lambda o: set_arg(o, "sluice-gateway", "--workers",
                       "dns:sluice-worker.$(POD_NAMESPACE).svc.cluster.local:9101"),
     "is not a port of Service sluice-worker", False),
    ("discovery name of another namespace",
     lambda o: set_arg(o, "sluice-gateway", "--workers",
                       "dns:sluice-worker.default.svc.cluster.local:8001"),
     "not a Service of this namespace", False),
    ("an env reference the kubelet cannot expand",
     lambda o: set_arg(o, "sluice-gateway", "--gateway-id", "$(HOSTNAME)"),
     "$(HOSTNAME) is not defined", False),
    ("link port open to every pod",
     lambda o: worker_policy(o).pop("from"),
     "other pod → worker:8001 is allowed, should be denied", False),
    ("workers allowed to reach Redis",
     lambda o: find(o, "NetworkPolicy", "sluice-redis")["spec"]["ingress"][0]["from"][0]
     ["podSelector"]["matchLabels"].pop("app.kubernetes.io/component"),
     "worker → redis:6379 is allowed, should be denied", False),
    ("memory limit too small for --max-connections",
     lambda o: container(o, "sluice-gateway")["resources"].update(
         requests={"cpu": "100m", "memory": "64Mi"}, limits={"memory": "64Mi"}),
     "memory limit 64Mi <", False),
    ("a writable root filesystem",
     lambda o: container(o, "sluice-worker")["securityContext"].update(
         readOnlyRootFilesystem=False), "readOnlyRootFilesystem is not true", False),
    ("in-memory channel layer with two gateways",
     lambda o: (next(e for e in container(o, "sluice-gateway")["env"]
                     if e["name"] == "SLUICE_LAYER").update(value="memory"),
                find(o, "Deployment", "sluice-gateway")["spec"].update(replicas=2)),
     "--layer memory with more than one gateway", False),
    ("a spread constraint that selects other pods",
     lambda o: find(o, "Deployment", "sluice-worker")["spec"]["template"]["spec"]
     ["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"].update(
         {"app.kubernetes.io/component": "gateway"}), "does not select its own pods", False),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("rendered")
    args = parser.parse_args()
    base = [d for d in yaml.safe_load_all(Path(args.rendered).read_text()) if d]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="sluice-k8s-selftest-") as tmp:
        for i, (what, mutate, expected, probes) in enumerate(MUTATIONS):
            objects = copy.deepcopy(base)
            mutate(objects)
            path = Path(tmp) / f"mutation{i}.yaml"
            path.write_text(yaml.safe_dump_all(objects))
            argv = [sys.executable, str(CHECK), "--build", args.build, f"m{i}={path}"]
            if not probes:
                argv.insert(2, "--no-probes")
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            caught = proc.returncode == 1 and any(
                line.startswith("FAIL") and expected in line for line in proc.stdout.splitlines())
            if caught:
                print(f"ok   selftest: rejected: {what}")
            else:
                failed += 1
                print(f"FAIL selftest: not rejected as expected: {what} (wanted FAIL with "
                      f"{expected!r}; exit {proc.returncode})\n{proc.stdout[-1500:]}")
    print(f"selftest: {len(MUTATIONS) - failed} of {len(MUTATIONS)} mistakes rejected")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
