#!/usr/bin/env python3
"""Checks rendered sluice manifests against the real binaries (k8s/check.sh runs it).

    check_manifests.py --build BUILD_DIR NAME=RENDERED.yaml...

For every rendered variant:
  static   pod security (restricted + read-only root), resources, env references, Services
           and their ports, discovery of the workers, the channel layer's Redis, HPAs and
           the Prometheus Adapter rules, PDBs and spread constraints, NetworkPolicies
           (evaluated: who reaches which port), the drain timings against the grace period,
           the memory limits against the measured cost of a connection;
  config   every sluice container's command and args (env expanded as the kubelet does) are
           accepted by the real binary with --check-config;
  probes   the binaries are started with those args (bind addresses rewritten to free
           loopback ports, the worker address to the local worker), and every probe's port
           and path answers as Kubernetes expects; the metrics the HPAs, the adapter rules
           and the Grafana dashboard use are served.
Each failure is printed as FAIL; the exit status is 1 when any check failed.
"""

import argparse
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ADAPTER_RULES = REPO / "k8s" / "monitoring" / "prometheus-adapter-rules.yaml"
DASHBOARD = REPO / "k8s" / "monitoring" / "grafana-dashboard.json"

# The image's command → the binary in the build tree, and its tier.
BINARIES = {
    "/usr/local/bin/sluice-gateway": ("gateway/sluice-gateway", "gateway"),
    "/usr/local/bin/sluice-demo-worker": ("demo/sluice-demo-worker", "worker"),
}
# Seconds a process may still take after its drain flags are used up, fixed in the code:
# the gateway gives WebSockets closed with 1001 kRetireGrace (2 s, gateway/gateway.cc) and
# then ends its links; the worker's gRPC server Shutdown has a 2 s deadline and consumers
# get 2 s more to return (worker/runtime.cc Stop). Plus 1 s for the process to exit.
SHUTDOWN_TAIL = {"gateway": 2 + 1 + 1, "worker": 1}
# Memory per connection, as measured (docs/deploy.md, "Sizing"): resident KiB per open
# WebSocket in each process (gateway 1.7, worker 3.9 with the demo's consumers), plus, in the
# gateway, the kernel's memory for the client's socket (3.7 KiB: TCP, inode, file, dentry
# and epoll slabs), which cgroup v2 charges to the pod; the process's own baseline; and a
# quarter more for the buffers of busy connections. The memory limit must hold
# --max-connections (gateway) or --capacity (worker) connections.
SIZING = {
    "gateway": {"base_mib": 32, "kib_per_connection": 1.7 + 3.7, "flag": "--max-connections"},
    "worker": {"base_mib": 32, "kib_per_connection": 3.9, "flag": "--capacity"},
}
HEADROOM = 1.25
# Values the check gives to what a cluster would provide.
SECRET_FIXTURES = {("sluice-redis", "url"): "redis://redis.example.internal:6379/0"}
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
MONITORING_NAMESPACE = "monitoring"

failures = []


def fail(variant, what):
    failures.append(f"{variant}: {what}")
    print(f"FAIL {variant}: {what}", flush=True)


def ok(variant, what):
    print(f"ok   {variant}: {what}", flush=True)


# --- reading the manifests -------------------------------------------------------------


def load(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def pod_templates(objects):
    """(object, pod template) for every workload."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
            yield obj, obj["spec"]["template"]


def matches(selector, labels):
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def flag_values(args):
    """{--flag: value} from ["--flag=value", "--flag", "value", ...] (last one wins)."""
    values, i = {}, 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
            values[name] = value
        elif arg.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            values[arg] = args[i + 1]
            i += 1
        elif arg.startswith("--"):
            values[arg] = ""
        i += 1
    return values


def replace_flag(args, name, value):
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == name and i + 1 < len(args):
            out += [name, value]
            i += 2
            continue
        out.append(f"{name}={value}" if arg.startswith(name + "=") else arg)
        i += 1
    return out


def seconds(text):
    return float(re.match(r"^\s*([0-9.]+)", text).group(1))


QUANTITY = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1e3 / 2**20, "M": 1e6 / 2**20,
            "G": 1e9 / 2**20, "": 1 / 2**20}


def mebibytes(quantity):
    m = re.fullmatch(r"([0-9.]+)([KMG]i?)?", str(quantity))
    return float(m.group(1)) * QUANTITY[m.group(2) or ""]


class Env:
    """A container's environment as the kubelet builds it, for $(VAR) expansion."""

    def __init__(self, variant, obj, container):
        self.values, self.problems = {}, []
        meta = obj["metadata"]
        fields = {"metadata.name": f"{meta['name']}-check-pod",
                  "metadata.namespace": meta.get("namespace", "default"),
                  "status.podIP": "127.0.0.1", "spec.nodeName": "check-node"}
        for var in container.get("env") or []:
            name = var["name"]
            if "value" in var and "valueFrom" in var:
                self.problems.append(f"env {name} has both value and valueFrom")
            if "value" in var:
                self.values[name] = self.expand(var["value"], where=f"env {name}")
            elif "fieldRef" in (var.get("valueFrom") or {}):
                path = var["valueFrom"]["fieldRef"]["fieldPath"]
                if path not in fields:
                    self.problems.append(f"env {name}: fieldRef {path} has no value in the check")
                self.values[name] = fields.get(path, "")
            elif "secretKeyRef" in (var.get("valueFrom") or {}):
                ref = var["valueFrom"]["secretKeyRef"]
                key = (ref["name"], ref["key"])
                if key not in SECRET_FIXTURES:
                    self.problems.append(f"env {name}: no fixture for Secret {key[0]} key {key[1]}")
                self.values[name] = SECRET_FIXTURES.get(key, "")
            else:
                self.problems.append(f"env {name}: unsupported source {var.get('valueFrom')}")

    def expand(self, text, where):
        def sub(m):
            if m.group(0) == "$$":
                return "$"
            name = m.group(1)
            if name not in self.values:
                # The kubelet leaves an unknown reference as it is: the process would get
                # "$(NAME)" literally.
                self.problems.append(f"{where}: $({name}) is not defined before it is used")
                return m.group(0)
            return self.values[name]

        return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, text)


def sluice_containers(objects):
    """(object, template, container, binary path, tier) for every sluice container."""
    for obj, template in pod_templates(objects):
        for container in template["spec"]["containers"]:
            command = (container.get("command") or [None])[0]
            if command in BINARIES:
                binary, tier = BINARIES[command]
                yield obj, template, container, binary, tier


def help_defaults(binary):
    """{--flag: default} from the binary's --help (CLI11 prints defaults as [VALUE])."""
    text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10).stdout
    defaults = {}
    for m in re.finditer(r"^\s+(--[a-z0-9-]+)\s+[A-Z:]+=(\S+)", text, re.M):
        defaults[m.group(1)] = m.group(2)
    return defaults, text


# --- static checks ---------------------------------------------------------------------


def check_pod_security(variant, objects):
    for obj, template in pod_templates(objects):
        spec, name = template["spec"], obj["metadata"]["name"]
        pod_sc = spec.get("securityContext") or {}
        problems = []
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                problems.append(f"{key} is set")
        for volume in spec.get("volumes") or []:
            if "hostPath" in volume:
                problems.append(f"volume {volume['name']} is a hostPath")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append("the service account token is mounted (nothing here calls the API)")
        for c in spec["containers"] + (spec.get("initContainers") or []):
            sc = c.get("securityContext") or {}
            merged = {**pod_sc, **sc}
            if merged.get("runAsNonRoot") is not True:
                problems.append(f"{c['name']}: runAsNonRoot is not true")
            if merged.get("runAsUser", 1) == 0:
                problems.append(f"{c['name']}: runAsUser is 0")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{c['name']}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{c['name']}: readOnlyRootFilesystem is not true")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{c['name']}: capabilities do not drop ALL")
            if (sc.get("capabilities") or {}).get("add"):
                problems.append(f"{c['name']}: capabilities are added")
            seccomp = (merged.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{c['name']}: seccompProfile is {seccomp}, not RuntimeDefault")
            res = c.get("resources") or {}
            for kind in ("cpu", "memory"):
                if kind not in (res.get("requests") or {}):
                    problems.append(f"{c['name']}: no {kind} request")
            mem_req = (res.get("requests") or {}).get("memory")
            mem_lim = (res.get("limits") or {}).get("memory")
            if mem_lim is None:
                problems.append(f"{c['name']}: no memory limit")
            elif mem_req is not None and mebibytes(mem_req) != mebibytes(mem_lim):
                problems.append(f"{c['name']}: memory request {mem_req} != limit {mem_lim} "
                                "(a pod that outgrows its request is the first evicted)")
        for p in problems:
            fail(variant, f"{obj['kind']}/{name}: {p}")
        if not problems:
            ok(variant, f"{obj['kind']}/{name}: restricted pod security, read-only root, "
                        "resources set")


def check_env_and_config(variant, objects, build, secret_dirs):
    """--check-config for every sluice container; returns the expanded argv per container."""
    argvs = {}
    for obj, template, container, binary, tier in sluice_containers(objects):
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        env = Env(variant, obj, container)
        args = [env.expand(a, where="args") for a in container.get("args") or []]
        for p in env.problems:
            fail(variant, f"{name}: {p}")
        argvs[name] = (obj, template, container, build / binary, tier, args)
        # Files from Secret volumes: the kubelet would mount them; here they are made.
        local = rewrite_mounts(args, template, container, secret_dirs)
        exe = build / binary
        if local is None:
            fail(variant, f"{name}: mounts a Secret volume the check cannot make files for")
            continue
        proc = subprocess.run([str(exe), *local, "--check-config"], capture_output=True,
                              text=True, timeout=20)
        if proc.returncode != 0:
            fail(variant, f"{name}: {exe.name} --check-config exited {proc.returncode}: "
                          f"{proc.stderr.strip() or proc.stdout.strip()}")
        else:
            ok(variant, f"{name}: {proc.stdout.strip()}")
    return argvs


def rewrite_mounts(args, template, container, secret_dirs):
    """args with the mount paths of Secret volumes replaced by local directories holding
    generated files (certificates for tls.crt/tls.key/ca.crt); None when a key is unknown."""
    volumes = {v["name"]: v for v in template["spec"].get("volumes") or []}
    out = list(args)
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"]) or {}
        if "secret" not in volume:
            continue
        secret = volume["secret"]["secretName"]
        keys = [item["path"] for item in volume["secret"].get("items") or []]
        directory = secret_dirs.get(secret)
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix=f"secret-{secret}-"))
            if not make_secret_files(directory, keys):
                return None
            secret_dirs[secret] = directory
        out = [a.replace(mount["mountPath"].rstrip("/") + "/", str(directory) + "/")
               for a in out]
    return out


def make_secret_files(directory, keys):
    if not set(keys) <= {"tls.crt", "tls.key", "ca.crt"} or not keys:
        return False
    # A CA and a certificate it signed, as cert-manager would issue them.
    run = lambda *a: subprocess.run(["openssl", *a], cwd=directory, check=True,
                                    capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=sluice-check-ca")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        "tls.key", "-out", "tls.csr", "-subj", "/CN=sluice-worker",
        "-addext", "subjectAltName=DNS:sluice-worker")
    run("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tls.crt", "-days", "1", "-copy_extensions", "copy")
    return True


def container_port(container, port):
    """A probe's or Service's port (number or name) → the container's port number."""
    if isinstance(port, int):
        return port
    if str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    return None


def check_services(variant, objects):
    workloads = list(pod_templates(objects))
    for svc in (o for o in objects if o["kind"] == "Service"):
        name = f"Service/{svc['metadata']['name']}"
        selected = [(o, t) for o, t in workloads
                    if matches({"matchLabels": svc["spec"].get("selector") or {}},
                               t["metadata"].get("labels") or {})]
        if not svc["spec"].get("selector") or not selected:
            fail(variant, f"{name} selects no workload")
            continue
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for obj, template in selected:
                if not any(container_port(c, target) is not None and
                           any(p["containerPort"] == container_port(c, target)
                               for p in c.get("ports") or [])
                           for c in template["spec"]["containers"]):
                    fail(variant, f"{name} port {port['port']}: targetPort {target} is no "
                                  f"container port of {obj['kind']}/{obj['metadata']['name']}")
        ok(variant, f"{name} selects {', '.join(o['metadata']['name'] for o, _ in selected)}; "
                    "its target ports exist")


def check_discovery_and_layer(variant, objects, argvs):
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    workers = [v for v in argvs.values() if v[4] == "worker"]
    for name, (obj, template, container, exe, tier, args) in argvs.items():
        if tier != "gateway":
            continue
        flags = flag_values(args)
        namespace = obj["metadata"].get("namespace", "default")
        m = re.fullmatch(r"dns:([^:]+):(\d+)", flags.get("--workers", ""))
        if not m:
            fail(variant, f"{name}: --workers is not dns:NAME:PORT (a fixed list does not follow "
                          "the worker Deployment)")
            continue
        host, port = m.group(1).rstrip("."), int(m.group(2))
        svc_name, _, rest = host.partition(".")
        svc = services.get(svc_name)
        if rest != f"{namespace}.svc.cluster.local" or svc is None:
            fail(variant, f"{name}: --workers names {host}, not a Service of this namespace "
                          f"({svc_name}.{namespace}.svc.cluster.local)")
            continue
        if svc["spec"].get("clusterIP") != "None":
            fail(variant, f"{name}: Service {svc_name} is not headless: its DNS name is one "
                          "virtual IP, not one record per worker")
        if svc["spec"].get("publishNotReadyAddresses"):
            fail(variant, f"{name}: Service {svc_name} publishes workers that are not ready")
        svc_port = next((p for p in svc["spec"]["ports"] if p["port"] == port), None)
        if svc_port is None:
            fail(variant, f"{name}: --workers port {port} is not a port of Service {svc_name}")
            continue
        linked = False
        for wobj, wtemplate, wcontainer, _, _, wargs in workers:
            if not matches({"matchLabels": svc["spec"]["selector"]},
                           wtemplate["metadata"].get("labels") or {}):
                continue
            # A headless Service's records are pod IPs: the gateway dials the port it names,
            # so the worker must listen on exactly that port.
            listen = flag_values(wargs).get("--listen", "")
            if not listen.endswith(f":{port}"):
                fail(variant, f"{name}: dials workers on port {port}, but "
                              f"{wobj['metadata']['name']} listens on {listen}")
            elif container_port(wcontainer, svc_port.get("targetPort", port)) != port:
                fail(variant, f"{name}: Service {svc_name} port {port} targets "
                              f"{svc_port.get('targetPort')}, not the link port {port}")
            else:
                linked = True
        if linked:
            ok(variant, f"{name}: discovers the workers through headless Service {svc_name}, "
                        f"port {port} = the workers' --listen port")
        else:
            fail(variant, f"{name}: Service {svc_name} selects no worker")
        layer = flags.get("--layer", "memory")
        replicas = obj["spec"].get("replicas")
        hpa = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler" and
               o["spec"]["scaleTargetRef"]["name"] == obj["metadata"]["name"]]
        several = (replicas or 1) > 1 or any(h["spec"]["maxReplicas"] > 1 for h in hpa)
        if layer == "memory" and several:
            fail(variant, f"{name}: --layer memory with more than one gateway: each would have "
                          "its own groups")
        m = re.fullmatch(r"redis://([^:/]+)(?::(\d+))?(?:/\d+)?", layer)
        if m and m.group(1).endswith(".svc.cluster.local"):
            svc_name, _, rest = m.group(1).partition(".")
            redis_svc = services.get(svc_name)
            port = int(m.group(2) or 6379)
            if (rest != f"{namespace}.svc.cluster.local" or redis_svc is None or
                    not any(p["port"] == port for p in redis_svc["spec"]["ports"])):
                fail(variant, f"{name}: --layer {layer}: no Service with that name and port in "
                              f"namespace {namespace}")
            else:
                ok(variant, f"{name}: the channel layer's Redis is Service "
                            f"{redis_svc['metadata']['name']}:{port}")


def check_drain(variant, argvs):
    for name, (obj, template, container, exe, tier, args) in argvs.items():
        defaults, _ = help_defaults(exe)
        flags = {**defaults, **flag_values(args)}
        grace = template["spec"].get("terminationGracePeriodSeconds", 30)
        pre_stop = 0.0
        handler = (container.get("lifecycle") or {}).get("preStop") or {}
        if "sleep" in handler:
            pre_stop = float(handler["sleep"]["seconds"])
        elif "exec" in handler:
            command = handler["exec"]["command"]
            if Path(command[0]).name != "sleep" or len(command) != 2:
                fail(variant, f"{name}: preStop {command} is not a plain sleep")
                continue
            pre_stop = seconds(command[1])
        elif handler:
            fail(variant, f"{name}: preStop {handler} is not a sleep")
            continue
        drain = seconds(flags["--drain-timeout"])
        parts = [f"preStop {pre_stop:g}"]
        if tier == "gateway":
            delay = seconds(flags["--drain-delay"])
            drain += delay
            parts.append(f"--drain-delay {delay:g}")
            probe = container.get("readinessProbe") or {}
            unready_after = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
            if delay < unready_after:
                fail(variant, f"{name}: --drain-delay {delay:g} s is shorter than the readiness "
                              f"probe needs to see the drain ({unready_after} s)")
        parts += [f"--drain-timeout {seconds(flags['--drain-timeout']):g}",
                  f"shutdown {SHUTDOWN_TAIL[tier]}"]
        total = pre_stop + drain + SHUTDOWN_TAIL[tier]
        text = " + ".join(parts) + f" = {total:g} s"
        if total >= grace:
            fail(variant, f"{name}: drain {text} does not fit terminationGracePeriodSeconds "
                          f"{grace}: the kubelet would SIGKILL it mid-drain")
        else:
            ok(variant, f"{name}: drain {text} < terminationGracePeriodSeconds {grace}")


def check_sizing(variant, argvs):
    for name, (obj, template, container, exe, tier, args) in argvs.items():
        defaults, _ = help_defaults(exe)
        sizing = SIZING[tier]
        flags = {**defaults, **flag_values(args)}
        connections = int(flags[sizing["flag"]])
        need = (sizing["base_mib"] + connections * sizing["kib_per_connection"] / 1024) * HEADROOM
        limit = (container.get("resources") or {}).get("limits", {}).get("memory")
        if limit is None:
            continue  # reported by the pod checks
        if mebibytes(limit) < need:
            fail(variant, f"{name}: memory limit {limit} < {need:.0f} MiB needed for "
                          f"{sizing['flag']} {connections} (({sizing['base_mib']} MiB + "
                          f"{sizing['kib_per_connection']:g} KiB each) x {HEADROOM:g}; "
                          "docs/deploy.md)")
        else:
            ok(variant, f"{name}: memory limit {limit} holds {sizing['flag']} {connections} "
                        f"({need:.0f} MiB)")


def adapter_metrics():
    rules = yaml.safe_load(ADAPTER_RULES.read_text())
    names, series = set(), set()
    for rule in rules["rules"]["custom"]:
        names.add(rule["name"]["as"])
        series |= set(re.findall(r"\bsluice_[a-z_]+\b", rule["seriesQuery"] + rule["metricsQuery"]))
    return names, series


def check_autoscaling_and_disruption(variant, objects):
    workloads = {(o["kind"], o["metadata"]["name"]): o for o, _ in pod_templates(objects)}
    adapter_names, _ = adapter_metrics()
    for hpa in (o for o in objects if o["kind"] == "HorizontalPodAutoscaler"):
        name = f"HorizontalPodAutoscaler/{hpa['metadata']['name']}"
        ref = hpa["spec"]["scaleTargetRef"]
        target = workloads.get((ref["kind"], ref["name"]))
        if target is None:
            fail(variant, f"{name} scales {ref['kind']}/{ref['name']}, which is not rendered")
            continue
        if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
            fail(variant, f"{name}: minReplicas > maxReplicas")
        if target["spec"].get("replicas") is not None:
            fail(variant, f"{name}: {ref['name']} also sets replicas; every apply would reset "
                          "what the autoscaler chose")
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "Resource":
                resource = metric["resource"]["name"]
                for c in target["spec"]["template"]["spec"]["containers"]:
                    if resource not in ((c.get("resources") or {}).get("requests") or {}):
                        fail(variant, f"{name}: {resource} utilization needs a {resource} "
                                      f"request on container {c['name']}")
            elif metric["type"] == "Pods":
                metric_name = metric["pods"]["metric"]["name"]
                if metric_name not in adapter_names:
                    fail(variant, f"{name}: metric {metric_name} is not served by the "
                                  f"Prometheus Adapter rules ({ADAPTER_RULES.name})")
        ok(variant, f"{name}: target, requests and custom metrics line up")
    for obj, template in pod_templates(objects):
        labels = template["metadata"].get("labels") or {}
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        pdbs = [p for p in objects if p["kind"] == "PodDisruptionBudget" and
                matches(p["spec"]["selector"], labels)]
        if obj["kind"] == "Deployment" and len(pdbs) != 1:
            fail(variant, f"{name} is covered by {len(pdbs)} PodDisruptionBudgets, not 1")
        spread = template["spec"].get("topologySpreadConstraints") or []
        if obj["kind"] == "Deployment" and not spread:
            fail(variant, f"{name} has no topologySpreadConstraints")
        for constraint in spread:
            if not matches(constraint["labelSelector"], labels):
                fail(variant, f"{name}: a spread constraint on {constraint['topologyKey']} "
                              "does not select its own pods")
        if obj["kind"] == "Deployment" and len(pdbs) == 1 and spread:
            ok(variant, f"{name}: one PodDisruptionBudget, spread over "
                        f"{', '.join(c['topologyKey'] for c in spread)}")


def check_network_policies(variant, objects):
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    pods = {}
    for obj, template in pod_templates(objects):
        component = (template["metadata"].get("labels") or {}).get("app.kubernetes.io/component")
        pods[component] = (obj["metadata"].get("namespace", "default"),
                           template["metadata"].get("labels") or {}, template)
    namespace = next(iter(pods.values()))[0]
    pods["other pod"] = (namespace, {"app": "other"}, None)
    pods["monitoring"] = (MONITORING_NAMESPACE, {"app": "prometheus"}, None)
    pods["other namespace"] = ("elsewhere", {"app.kubernetes.io/component": "gateway",
                                             "app.kubernetes.io/name": "sluice"}, None)

    def port_number(template, port):
        for c in template["spec"]["containers"]:
            n = container_port(c, port)
            if n is not None:
                return n
        return None

    def allowed(src, dst, port):
        src_ns, src_labels, _ = pods[src]
        dst_ns, dst_labels, dst_template = pods[dst]
        selecting = [p for p in policies if p["metadata"].get("namespace", "default") == dst_ns
                     and matches(p["spec"]["podSelector"], dst_labels)
                     and "Ingress" in (p["spec"].get("policyTypes") or ["Ingress"])]
        if not selecting:
            return True
        for policy in selecting:
            for rule in policy["spec"].get("ingress") or []:
                ports = rule.get("ports")
                if ports and not any(port_number(dst_template, p.get("port")) == port
                                     for p in ports):
                    continue
                peers = rule.get("from")
                if not peers:
                    return True
                for peer in peers:
                    ns_ok = (matches(peer["namespaceSelector"], {NAMESPACE_LABEL: src_ns})
                             if "namespaceSelector" in peer else src_ns == dst_ns)
                    pod_ok = (matches(peer["podSelector"], src_labels)
                              if "podSelector" in peer else True)
                    if "ipBlock" not in peer and ns_ok and pod_ok:
                        return True
        return False

    expectations = []
    if "worker" in pods:
        _, _, worker = pods["worker"]
        link = port_number(worker, "link")
        admin = port_number(worker, "admin")
        expectations += [("gateway", "worker", link, True), ("worker", "worker", link, False),
                         ("other pod", "worker", link, False),
                         ("other namespace", "worker", link, False),
                         ("monitoring", "worker", link, False),
                         ("monitoring", "worker", admin, True),
                         ("other pod", "worker", admin, False)]
    if "gateway" in pods:
        _, _, gateway = pods["gateway"]
        expectations += [("other namespace", "gateway", port_number(gateway, "http"), True),
                         ("monitoring", "gateway", port_number(gateway, "admin"), True),
                         ("other pod", "gateway", port_number(gateway, "admin"), False)]
    if "redis" in pods:
        _, _, redis = pods["redis"]
        port = port_number(redis, "redis")
        expectations += [("gateway", "redis", port, True), ("worker", "redis", port, False),
                         ("other pod", "redis", port, False),
                         ("other namespace", "redis", port, False)]
    bad = [(s, d, p, want) for s, d, p, want in expectations if allowed(s, d, p) != want]
    for src, dst, port, want in bad:
        fail(variant, f"NetworkPolicy: {src} → {dst}:{port} is "
                      f"{'denied' if want else 'allowed'}, should be "
                      f"{'allowed' if want else 'denied'}")
    if not bad:
        ok(variant, f"NetworkPolicy: {len(expectations)} paths as intended (only gateways reach "
                    "the link port and Redis; admin ports from the monitoring namespace)")


# --- running the binaries --------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Proc:
    def __init__(self, argv, log):
        self.argv, self.log = argv, log
        self.lines = []
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(log, "wb"),
                                      text=True, preexec_fn=_die_with_parent)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.popen.stdout:
            self.lines.append(line.strip())

    def wait_line(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if re.search(pattern, line):
                    return True
            if self.popen.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def stderr_tail(self):
        return Path(self.log).read_text(errors="replace")[-600:]


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as e:
        return None, f"{type(e).__name__}: {e}"


def grpc_health(port, service):
    """grpc.health.v1.Health/Check as the kubelet's grpc probe calls it: SERVING or not."""
    import grpc

    request = (b"\x0a" + bytes([len(service)]) + service.encode()) if service else b""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            response = check(request, timeout=2)
        except grpc.RpcError as e:
            return f"{e.code().name}: {e.details()}"
    # HealthCheckResponse { ServingStatus status = 1; }: SERVING is 1.
    return "SERVING" if response == b"\x08\x01" else f"status bytes {response!r}"


def probe(kind, container, spec, ports):
    """(passed, what) for one probe, polled for up to 15 s as the kubelet would retry."""
    deadline = time.monotonic() + 15
    while True:
        if "httpGet" in spec:
            port = container_port(container, spec["httpGet"]["port"])
            path = spec["httpGet"].get("path", "/")
            if port not in ports:
                return False, f"httpGet port {spec['httpGet']['port']} is bound by no flag"
            status, body = http_get(ports[port], path)
            what = f"GET :{port}{path} → {status} {body.strip()[:60]!r}"
            passed = status is not None and 200 <= status < 400
        elif "grpc" in spec:
            port = spec["grpc"]["port"]
            if port not in ports:
                return False, f"grpc port {port} is bound by no flag"
            result = grpc_health(ports[port], spec["grpc"].get("service", ""))
            what = f"grpc.health.v1 Check :{port} → {result}"
            passed = result == "SERVING"
        else:
            return False, f"{kind}: unsupported probe {list(spec)}"
        if passed or time.monotonic() > deadline:
            return passed, what
        time.sleep(0.25)


def served_metrics(port):
    status, body = http_get(port, "/metrics")
    return set(re.findall(r"^(sluice_[a-z_]+)", body, re.M)) if status == 200 else set()


def run_probes(variant, argvs, workdir, secret_dirs):
    """Starts the workers, then the gateways, with the manifests' args; probes each."""
    procs, metrics, started = [], set(), False
    redis = None
    try:
        worker_link = None
        order = sorted(argvs.items(), key=lambda kv: kv[1][4] != "worker")  # workers first
        for name, (obj, template, container, exe, tier, args) in order:
            args = rewrite_mounts(args, template, container, secret_dirs) or args
            flags = flag_values(args)
            unknown = [f for f in flags if f not in help_defaults(exe)[1]]
            if unknown:  # --check-config has said so already
                fail(variant, f"{name}: probes not run: the binary has no {unknown[0]}")
                continue
            ports = {}  # container port → local port
            for flag in ("--listen", "--admin"):
                if flag in flags:
                    port = int(flags[flag].rsplit(":", 1)[1])
                    ports[port] = free_port()
                    args = replace_flag(args, flag, f"127.0.0.1:{ports[port]}")
            if tier == "gateway":
                if worker_link is None:
                    fail(variant, f"{name}: no worker started for it to link to")
                    continue
                args = replace_flag(args, "--workers", f"dns:localhost:{worker_link}")
                layer = flags.get("--layer", "")
                if layer.startswith("redis://"):
                    if redis is None:
                        redis_port = free_port()
                        redis = Proc(["redis-server", "--port", str(redis_port), "--save", "",
                                      "--appendonly", "no"], workdir / "redis.log")
                        redis.port = redis_port
                        procs.append(redis)
                    args = replace_flag(args, "--layer", f"redis://127.0.0.1:{redis.port}/0")
            proc = Proc([str(exe), *args], workdir / f"{tier}.log")
            procs.append(proc)
            started = True
            if not proc.wait_line(r"listening on"):
                fail(variant, f"{name}: {exe.name} did not start with the manifest's args: "
                              f"{proc.stderr_tail()}")
                continue
            if tier == "worker" and worker_link is None:
                worker_link = ports[int(flags["--listen"].rsplit(":", 1)[1])]
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                spec = container.get(kind)
                if spec is None:
                    if kind != "startupProbe":
                        fail(variant, f"{name}: no {kind}")
                    continue
                passed, what = probe(kind, container, spec, ports)
                (ok if passed else fail)(variant, f"{name}: {kind}: {what}")
            admin = flags.get("--admin")
            if admin:
                metrics |= served_metrics(ports[int(admin.rsplit(":", 1)[1])])
    finally:
        for proc in reversed(procs):
            proc.stop()
    return metrics if started else None


def check_metric_names(variant, metrics):
    if not metrics:
        fail(variant, "no metrics scraped from the started processes")
        return
    _, series = adapter_metrics()
    missing = sorted(series - metrics)
    if missing:
        fail(variant, f"the Prometheus Adapter rules use metrics nobody serves: {missing}")
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"]
             for t in p.get("targets", [])]
    used = set(re.findall(r"\bsluice_[a-z_]+\b", " ".join(exprs)))
    missing = sorted(m for m in used if m not in metrics and
                     re.sub(r"_(bucket|sum|count)$", "", m) not in metrics)
    if missing:
        fail(variant, f"the Grafana dashboard queries metrics nobody serves: {missing}")
    else:
        ok(variant, f"{len(series)} adapter series and {len(used)} dashboard metrics are served")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", type=Path, required=True)
    parser.add_argument("--no-probes", action="store_true", help="static checks and config only")
    parser.add_argument("variants", nargs="+", metavar="NAME=FILE")
    args = parser.parse_args()
    for binary, _ in BINARIES.values():
        if not os.access(args.build / binary, os.X_OK):
            sys.exit(f"check_manifests: {args.build / binary} is not built")
    secret_dirs = {}
    with tempfile.TemporaryDirectory(prefix="sluice-k8s-check-") as tmp:
        for item in args.variants:
            variant, path = item.split("=", 1)
            objects = load(path)
            if not any(True for _ in sluice_containers(objects)):
                fail(variant, "no sluice container rendered")
                continue
            check_pod_security(variant, objects)
            check_services(variant, objects)
            argvs = check_env_and_config(variant, objects, args.build, secret_dirs)
            check_discovery_and_layer(variant, objects, argvs)
            check_drain(variant, argvs)
            check_sizing(variant, argvs)
            check_autoscaling_and_disruption(variant, objects)
            check_network_policies(variant, objects)
            if not args.no_probes:
                workdir = Path(tmp) / variant
                workdir.mkdir()
                metrics = run_probes(variant, argvs, workdir, secret_dirs)
                if metrics is not None:
                    check_metric_names(variant, metrics)
    for directory in secret_dirs.values():
        shutil.rmtree(directory, ignore_errors=True)
    print(f"manifests: {len(failures)} failed" if failures else "manifests: all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
