#!/usr/bin/env python3
"""The sluice benchmark driver: bench/run.sh builds, installs and then runs this.

Starts each target in turn (the direct Beast baseline, sluice with one gateway and 1 or 2
workers, the Channels peers when installed), measures it under the same load, stops it, and
reports every figure with its ratio to the baseline: a markdown table on stdout and in
bench/results/<timestamp>.md, all figures in bench/results/<timestamp>.json, plots as SVG
beside them. Figures are reported, never asserted: the run fails only when the setup is
broken (a binary missing, a target that does not start or answers nothing).

Python 3 standard library only; what it measures and how to read it: bench/README.md.
"""

import argparse
import ctypes
import datetime
import http.client
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS_DIR = REPO / "bench" / "peers"
RESULTS_DIR = REPO / "bench" / "results"
# The Debian interpreter: the peers' packages install into it, whatever python3 PATH finds.
PYTHON = "/usr/bin/python3"
CLK_TCK = os.sysconf("SC_CLK_TCK")

START_TIMEOUT = 20.0  # seconds for a target to print its banner and answer GET /hello
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
SPARE_FDS = 64  # descriptors a process needs besides its sockets
HTTP_CONNECTIONS = 50  # wrk -t1 -c50
ECHO_CONNECTIONS = 50
ECHO_SIZE = 32
HOLD_CONCURRENCY = 64  # handshakes in flight while opening held sockets
SCALING_WORKERS = (1, 2, 4)
SCALING_HELD = (1000, 5000, 10000)
SCALING_CONNECTIONS = (50, 200, 500, 1000)
# Broadcast runs: (members, messages published per second). The first in one gateway with the
# in-memory layer; the second across two gateways and two workers on the Redis layer.
BROADCAST_RUNS = ((1000, 10, 1), (10000, 2, 2))
BROADCAST_SMOKE = ((100, 10, 1),)
BROADCAST_SIZE = 64
BROADCAST_PATH = "/ws/chat/bench"


class SetupError(Exception):
    """The setup is broken: the run fails. Figures never raise this."""


# ---------------------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # A child outlives no driver, even one killed with SIGKILL.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# With two or more usable CPUs, the last is the servers' core: the direct server (one thread)
# always runs there, and so do the gateway and the worker of the "one core" column; the load
# generators run on the other CPUs, so they never take that core. Same CPU budget on both
# sides of that ratio: one core serves, the rest load.
_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS, GENERATOR_CPUS = ({_CPUS[-1]}, set(_CPUS[:-1])) if len(_CPUS) >= 2 else (None, None)


def _child_setup(cpus):
    def setup():
        _die_with_parent()
        if cpus:
            os.sched_setaffinity(0, cpus)
    return setup


RUNNING = []  # every process started and not yet stopped


class Proc:
    """A server process; stdout and stderr go to a log file that banners are read from."""

    def __init__(self, name, argv, log_dir, env=None, cwd=None, cpus=None):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        try:
            self.popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                env=env, cwd=cwd, preexec_fn=_child_setup(cpus))
        except OSError as e:
            self._log.close()
            raise SetupError(f"cannot start {name} ({argv[0]}): {e}") from e
        RUNNING.append(self)

    @property
    def pid(self):
        return self.popen.pid

    def tail(self, lines=15):
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join("    " + line for line in text[-lines:])

    def wait_line(self, pattern, timeout=START_TIMEOUT):
        """Waits for a line matching pattern in the log; returns the match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.M)
        while True:
            match = regex.search(self.log_path.read_text(errors="replace"))
            if match:
                return match
            if self.popen.poll() is not None:
                raise SetupError(f"{self.name} exited with {self.popen.returncode} before "
                                 f"printing /{pattern}/:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise SetupError(f"{self.name} printed no /{pattern}/ within {timeout:g} s:\n"
                                 f"{self.tail()}")
            time.sleep(0.02)

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        if self in RUNNING:
            RUNNING.remove(self)


def stop_all():
    # No second signal may cut the clean-up short.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    for proc in reversed(list(RUNNING)):
        proc.stop()


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# ---------------------------------------------------------------------------- /proc

def cpu_seconds(pids):
    """utime + stime of the processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return total / CLK_TCK


def task_cpu_seconds():
    """CPU seconds the whole machine spent running tasks (user, nice, system), of those the
    niced ones, and the time the hypervisor took (steal). Interrupt time is left out: on
    loopback it is the servers' own network work."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system = fields[0:3]
    steal = fields[7] if len(fields) > 7 else 0
    return (user + nice + system) / CLK_TCK, nice / CLK_TCK, steal / CLK_TCK


class Window:
    """CPU accounting over one measured window: the servers' CPU time, and how much of the
    machine went to anything else than the servers and the load generator (another build,
    another benchmark), which the report flags as noise."""

    def __init__(self, server_pids):
        self.server_pids = server_pids
        self.wall = time.monotonic()
        self.server = cpu_seconds(server_pids)
        self.tasks, self.nice, self.steal = task_cpu_seconds()

    def close(self, generator_cpu):
        wall = max(time.monotonic() - self.wall, 1e-3)
        server = cpu_seconds(self.server_pids) - self.server
        tasks, nice, steal = task_cpu_seconds()
        other = max(0.0, tasks - self.tasks - server - generator_cpu)
        # Niced work (a build told to yield) mostly fills cores the benchmark left idle.
        niced = min(other, nice - self.nice)
        return {"server_cpu_s": server, "generator_cpu_s": round(generator_cpu, 3),
                "other_cores": round(other / wall, 2), "other_niced_cores": round(niced / wall, 2),
                "steal_cores": round((steal - self.steal) / wall, 2)}


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
    return total


def settled_rss(pids, timeout):
    """Samples RSS every 0.25 s until the last four samples agree (within 128 KiB or 0.2 %),
    or the timeout; returns (KiB, settled)."""
    samples = [rss_kib(pids)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        samples.append(rss_kib(pids))
        last = samples[-4:]
        if len(last) == 4 and max(last) - min(last) <= max(128, 0.002 * max(last)):
            return samples[-1], True
    return samples[-1], False


def nofile_limit():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def local_ports():
    """How many ephemeral ports the client side of the held sockets can use."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(high) - int(low) + 1
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------- targets

class Target:
    """One system under test: its processes and client port."""

    def __init__(self, key, label, kind, procs, port, settings=None, ports=None):
        self.key = key
        self.label = label
        self.kind = kind
        self.procs = procs
        self.port = port
        self.ports = ports or [port]  # every gateway's client port
        self.settings = settings or {}

    @property
    def pids(self):
        return [p.pid for p in self.procs]

    def http_url(self):
        return f"http://127.0.0.1:{self.port}/hello"

    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}/ws/echo"

    def alive(self):
        return all(p.popen.poll() is None for p in self.procs)

    def stop(self):
        for proc in reversed(self.procs):
            proc.stop()


def http_get(port, path, timeout=2.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, http.client.HTTPException) as e:
            last = e
        time.sleep(0.05)
    raise SetupError(f"timed out after {timeout:g} s waiting for {what}"
                     + (f" (last error: {last})" if last else ""))


def wait_hello(target):
    def ok():
        status, body = http_get(target.port, "/hello")
        return status == 200 and body == "Hello, world"

    wait_until(ok, START_TIMEOUT, f"{target.label}: GET /hello == 200 'Hello, world'")


def start_direct(ctx):
    proc = Proc("direct", [str(ctx.bin("bench/sluice-bench-direct")), "--listen", "127.0.0.1:0"],
                ctx.log_dir, cpus=SERVER_CPUS)
    port = int(proc.wait_line(r"^sluice-bench-direct listening on [^\s]+:(\d+)$").group(1))
    target = Target("direct", "direct", "direct", [proc], port)
    wait_hello(target)
    return target


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(ctx):
    """A private redis-server on a free loopback port, without persistence."""
    exe = shutil.which("redis-server")
    if not exe:
        raise SetupError("redis-server not found (scripts/setup.sh installs it)")
    port = free_port()
    proc = Proc("redis", [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(ctx.log_dir)], ctx.log_dir)
    proc.wait_line(r"Ready to accept connections")
    return proc, f"redis://127.0.0.1:{port}/0"


def start_sluice(ctx, workers, threads=None, build=None, gateways=1, redis=False,
                 one_core=False):
    """`gateways` gateways and `workers` workers; `threads` event-loop threads in each
    process (default: the processes' own default, one per usable core); binaries from `build`
    (default: the tree under test); `redis`: the gateways share a private redis-server's
    channel layer (else each has the in-memory one); `one_core`: every process on the
    servers' core (SERVER_CPUS), as the direct server."""
    if one_core and not SERVER_CPUS:
        raise SetupError("one core for the servers needs a second CPU for the load generator")
    cpus = SERVER_CPUS if one_core else None
    key = (f"sluice-{workers}w" + (f"-{gateways}g" if gateways > 1 else "")
           + ("-redis" if redis else "") + (f"-{threads}t" if threads else "")
           + ("-1core" if one_core else "") + ("-compare" if build else ""))
    thread_args = ["--threads", str(threads)] if threads else []
    procs = []
    layer_args = []
    if redis:
        redis_proc, url = start_redis(ctx)
        procs.append(redis_proc)
        layer_args = ["--layer", url]
    addresses = []
    for i in range(workers):
        proc = Proc(f"{key}-worker{i + 1}", [
            str(ctx.bin("demo/sluice-demo-worker", build)), "--listen", "127.0.0.1:0",
            "--admin", "127.0.0.1:0", "--capacity", str(ctx.worker_capacity)] + thread_args,
            ctx.log_dir, cpus=cpus)
        procs.append(proc)
        match = proc.wait_line(r"^sluice-worker listening on ([^\s]+:\d+)$")
        addresses.append(match.group(1))
    ports = []
    for g in range(gateways):
        gateway = Proc(f"{key}-gateway{g + 1}", [
            str(ctx.bin("gateway/sluice-gateway", build)), "--listen", "127.0.0.1:0",
            "--admin", "127.0.0.1:0", "--workers", ",".join(addresses)]
            + layer_args + thread_args, ctx.log_dir, cpus=cpus)
        procs.insert(g, gateway)
        ports.append(int(gateway.wait_line(
            r"^sluice-gateway listening on [^\s]+:(\d+)$").group(1)))
        admin = int(gateway.wait_line(r"^sluice-gateway admin on [^\s]+:(\d+)$").group(1))

        # Every link up before measuring, or the first seconds go to fewer workers. /readyz
        # says "N workers ready"; if its wording changes, a 200 is taken as enough.
        def ready(admin=admin):
            status, body = http_get(admin, "/readyz")
            if status != 200:
                return False
            match = re.match(r"\s*(\d+)", body)
            return match is None or int(match.group(1)) >= workers

        wait_until(ready, START_TIMEOUT, f"sluice gateway /readyz with {workers} workers ready")
    label = (f"sluice {gateways}+{workers}" + (", Redis layer" if redis else "")
             + (f", {threads} thread each" if threads else "")
             + (", one core" if one_core else ""))
    if build:
        label += f" ({build.name})"
    target = Target(key, label, "sluice", procs, ports[0],
                    {"gateways": gateways, "workers": workers,
                     "worker_capacity": ctx.worker_capacity,
                     "layer": "redis" if redis else "memory",
                     "threads": threads or "default (one per usable core)",
                     "cpus": sorted(cpus) if cpus else "any"}, ports)
    wait_hello(target)
    return target


def peers_available():
    if not os.access(PYTHON, os.X_OK):
        return False, f"{PYTHON} not found"
    probe = subprocess.run([PYTHON, "-c", "import uvicorn, daphne, channels, django"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return False, "python3-uvicorn, python3-daphne, python3-django-channels not installed " \
                      "(bench/run.sh --peers installs them)"
    return True, ""


def peer_versions():
    code = ("import json, uvicorn, daphne, channels, django, sys;"
            "print(json.dumps({'python': sys.version.split()[0], 'uvicorn': uvicorn.__version__,"
            "'daphne': daphne.__version__, 'channels': channels.__version__,"
            "'django': django.get_version()}))")
    try:
        out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return {}


def start_peer(ctx, server):
    env = dict(os.environ, PYTHONPATH=str(PEERS_DIR), DJANGO_SETTINGS_MODULE="peer_app.settings",
               PYTHONDONTWRITEBYTECODE="1")
    app = "peer_app.asgi:application"
    if server == "uvicorn":
        # One process, one event loop, no access log: uvicorn as the Channels docs run it,
        # with what Debian ships (h11 for HTTP, websockets for WebSocket, asyncio's loop).
        argv = [PYTHON, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "0",
                "--no-access-log", "--lifespan", "off", app]
        banner = r"Uvicorn running on http://[^\s]+:(\d+)"
    else:
        argv = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", "0", app]
        banner = r"Listening on TCP address [^\s]+:(\d+)"
    # One process each, on the servers' core like the direct server.
    proc = Proc(f"peer-{server}", argv, ctx.log_dir, env=env, cwd=str(PEERS_DIR),
                cpus=SERVER_CPUS)
    port = int(proc.wait_line(banner).group(1))
    target = Target(server, f"Channels + {server}", "peer", [proc], port,
                    {"app": "bench/peers (AsyncHttpConsumer, AsyncWebsocketConsumer)"})
    wait_hello(target)
    return target


# ---------------------------------------------------------------------------- load

_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def parse_wrk(text):
    """wrk --latency output → figures (latency in µs)."""
    def number(pattern, cast=float, default=None):
        match = re.search(pattern, text, re.M)
        return cast(match.group(1)) if match else default

    latency = {}
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        latency[f"p{pct}"] = round(float(value) * _UNITS[unit], 1)
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    errors += number(r"Non-2xx or 3xx responses: (\d+)", int, 0)
    return {
        "requests": number(r"^\s+(\d+) requests in", int, 0),
        "requests_per_s": number(r"^Requests/sec:\s+([\d.]+)", float, 0.0),
        "latency_us": latency,
        "errors": errors,
    }


def run_wrk(url, seconds):
    argv = ["wrk", "-t1", f"-c{HTTP_CONNECTIONS}", f"-d{seconds}s", "--latency", url]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30,
                             preexec_fn=_child_setup(GENERATOR_CPUS))
    except subprocess.TimeoutExpired as e:
        raise SetupError(f"wrk did not finish within {seconds + 30} s") from e
    except OSError as e:
        raise SetupError(f"cannot run wrk ({e}): scripts/setup.sh bench installs it") from e
    if out.returncode != 0:
        raise SetupError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout}")
    return out.stdout


def measure_http(ctx, target):
    url = target.http_url()
    if ctx.warmup >= 1:
        run_wrk(url, int(ctx.warmup))
    children = children_cpu_seconds()
    window = Window(target.pids)
    text = run_wrk(url, ctx.duration)  # waited for, so its CPU time is in the children's
    cpu = window.close(children_cpu_seconds() - children)
    figures = parse_wrk(text)
    if figures["requests"] == 0:
        raise SetupError(f"{target.label}: wrk completed no request:\n{text}")
    figures.update({
        "connections": HTTP_CONNECTIONS, "threads": 1, "duration_s": ctx.duration,
        "cpu_s": round(cpu["server_cpu_s"], 3),
        "cpu_s_per_1000": round(cpu["server_cpu_s"] * 1000 / figures["requests"], 5),
        "generator_cpu_s": cpu["generator_cpu_s"], "other_cores": cpu["other_cores"],
        "other_niced_cores": cpu["other_niced_cores"], "steal_cores": cpu["steal_cores"],
    })
    return figures


class LineReader:
    """Reads whole lines from a child's stdout with a deadline."""

    def __init__(self, stream):
        self.stream = stream
        self.buffer = b""

    def readline(self, deadline):
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.stream], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.stream.fileno(), 65536)
            if not chunk:
                if self.buffer:
                    line, self.buffer = self.buffer, b""
                    return line.decode(errors="replace")
                return ""
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode(errors="replace")


def start_ws_tool(ctx, args, stdin):
    log = open(ctx.log_dir / "sluice-bench-ws.log", "ab")
    try:
        proc = subprocess.Popen([str(ctx.bin("bench/sluice-bench-ws"))] + args, stdin=stdin,
                                stdout=subprocess.PIPE, stderr=log,
                                preexec_fn=_child_setup(GENERATOR_CPUS))
    finally:
        log.close()
    return proc


def finish_tool(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def run_windowed_tool(ctx, target, args, mode, timeout):
    """Runs sluice-bench-ws, sampling the servers' CPU between the "begin" and "end" lines it
    prints; returns its result line (the object whose "mode" is `mode`) and the CPU figures."""
    proc = start_ws_tool(ctx, args, subprocess.DEVNULL)
    reader = LineReader(proc.stdout)
    deadline = time.monotonic() + timeout
    window = cpu = result = None
    try:
        while True:
            line = reader.readline(deadline)
            if line is None:
                raise SetupError(f"{target.label}: sluice-bench-ws {mode} did not finish in time")
            if line == "":
                break
            message = json.loads(line)
            if message.get("event") == "begin":
                generator = cpu_seconds([proc.pid])
                window = Window(target.pids)
            elif message.get("event") == "end" and window:
                cpu = window.close(cpu_seconds([proc.pid]) - generator)
            elif message.get("mode") == mode:
                result = message
    finally:
        finish_tool(proc)
    return result, cpu


def cpu_figures(cpu, done):
    """The CPU figures of a window in which the servers completed `done` operations."""
    if not cpu:
        return {}
    return {
        "cpu_s": round(cpu["server_cpu_s"], 3),
        "cpu_s_per_1000": round(cpu["server_cpu_s"] * 1000 / done, 5),
        "generator_cpu_s": cpu["generator_cpu_s"], "other_cores": cpu["other_cores"],
        "other_niced_cores": cpu["other_niced_cores"], "steal_cores": cpu["steal_cores"],
    }


def measure_ws(ctx, target, connections=ECHO_CONNECTIONS):
    args = ["echo", "--url", target.ws_url(), "--connections", str(connections),
            "--size", str(ECHO_SIZE), "--duration", str(ctx.duration),
            "--warmup", str(ctx.warmup), "--threads", "1", "--concurrency", "64",
            "--open-timeout", "60"]
    result, cpu = run_windowed_tool(ctx, target, args, "echo",
                                    60 + ctx.warmup + ctx.duration + 30)
    if result is None or result["messages"] == 0:
        raise SetupError(f"{target.label}: WebSocket echo completed no message "
                         f"(see {ctx.log_dir}/sluice-bench-ws.log): {result}")
    figures = {
        "connections": connections, "size": ECHO_SIZE, "duration_s": ctx.duration,
        "warmup_s": ctx.warmup, "messages": result["messages"],
        "messages_per_s": result["messages_per_s"], "latency_us": result["latency_us"],
        "errors": result["errors"],
    }
    figures.update(cpu_figures(cpu, result["messages"]))
    return figures


def measure_memory(ctx, target, sockets):
    """KiB of server RSS per idle WebSocket: settled RSS before and while holding them."""
    limit = nofile_limit()
    if sockets + SPARE_FDS > limit:
        return {"sockets": sockets, "skipped": f"{sockets} sockets need {sockets + SPARE_FDS} "
                                               f"descriptors; the nofile limit is {limit}"}
    ports = local_ports()
    if ports and sockets > ports - 1000:
        return {"sockets": sockets, "skipped": f"{sockets} sockets need as many local ports; "
                                               f"net.ipv4.ip_local_port_range has {ports}"}
    before, before_settled = settled_rss(target.pids, ctx.settle_timeout)
    args = ["hold", "--url", target.ws_url(), "--connections", str(sockets), "--size", "8",
            "--concurrency", str(HOLD_CONCURRENCY), "--open-timeout", "120", "--check",
            "--max-hold", "300"]
    proc = start_ws_tool(ctx, args, subprocess.PIPE)
    reader = LineReader(proc.stdout)
    opened = result = None
    try:
        line = reader.readline(time.monotonic() + 150)
        if not line:
            raise SetupError(f"{target.label}: sluice-bench-ws hold opened nothing in time "
                             f"(see {ctx.log_dir}/sluice-bench-ws.log)")
        opened = json.loads(line)
        after, after_settled = settled_rss(target.pids, ctx.settle_timeout)
        proc.stdin.close()  # ends the hold: the tool checks every socket, closes them, reports
        line = reader.readline(time.monotonic() + 60)
        if line:
            result = json.loads(line)
    finally:
        finish_tool(proc)
    if opened["open"] == 0:
        raise SetupError(f"{target.label}: no WebSocket could be opened for the hold")
    figures = {
        "sockets": sockets, "open": opened["open"], "failed": opened["failed"],
        "open_seconds": opened["seconds"], "rss_before_kib": before, "rss_held_kib": after,
        "settled": before_settled and after_settled,
        "kib_per_socket": round((after - before) / opened["open"], 2),
    }
    if result:
        figures.update({"checked": result["checked"], "alive": result["alive"],
                        "dropped": result["dropped"]})
    return figures


def measure_broadcast(ctx, target, members, rate):
    """Fan-out through a chat room: `members` WebSockets spread over the target's gateways,
    one publishing `rate` messages a second for the run's duration; latency from publication
    to each member, delivered against expected, and the servers' CPU per 1000 deliveries."""
    limit = nofile_limit()
    if members + SPARE_FDS > limit:
        return {"members": members, "skipped": f"{members} members need {members + SPARE_FDS} "
                                               f"descriptors; the nofile limit is {limit}"}
    urls = []
    for port in target.ports:
        urls += ["--url", f"ws://127.0.0.1:{port}{BROADCAST_PATH}"]
    grace = 10
    args = ["broadcast"] + urls + [
        "--connections", str(members), "--rate", str(rate), "--duration", str(ctx.duration),
        "--warmup", str(ctx.warmup), "--size", str(BROADCAST_SIZE), "--threads", "1",
        "--concurrency", str(HOLD_CONCURRENCY), "--open-timeout", "120", "--grace", str(grace)]
    result, cpu = run_windowed_tool(ctx, target, args, "broadcast",
                                    120 + ctx.warmup + ctx.duration + grace + 30)
    if result is None or result["delivered"] == 0:
        raise SetupError(f"{target.label}: broadcast delivered nothing "
                         f"(see {ctx.log_dir}/sluice-bench-ws.log): {result}")
    figures = {k: result[k] for k in (
        "members", "rate", "published", "expected", "delivered", "lost", "duplicates",
        "out_of_order", "complete", "deliveries_per_s", "latency_us", "dropped", "errors")}
    figures.update({"size": BROADCAST_SIZE, "gateways": len(target.ports),
                    "duration_s": ctx.duration})
    figures.update(cpu_figures(cpu, result["delivered"]))
    return figures


def run_broadcast(ctx, results):
    """Broadcast through a group (issue 7, item 4): the direct server's in-process room
    against sluice's channel layer, same members and rate, one run after the other."""
    rows = []
    for members, rate, gateways in (BROADCAST_SMOKE if ctx.smoke else BROADCAST_RUNS):
        row = {"members": members, "rate": rate, "gateways": gateways}
        redis = gateways > 1
        if redis and not shutil.which("redis-server"):
            row["skipped"] = "redis-server not installed"
            rows.append(row)
            continue
        for name, start in (
                ("direct", lambda: start_direct(ctx)),
                ("sluice", lambda: start_sluice(ctx, gateways, gateways=gateways, redis=redis))):
            try:
                target = start_clean(start)
                try:
                    row[name] = measure_broadcast(ctx, target, members, rate)
                    row[f"{name}_label"] = target.label
                finally:
                    target.stop()
            except (SetupError, OSError, ValueError, KeyError) as e:
                log(f"FAILED: broadcast {name}, {members} members: {e}")
                results["errors"].append({"target": f"broadcast {name} {members}",
                                          "error": str(e)})
                continue
            figures = row[name]
            if "skipped" in figures:
                log(f"broadcast: {name}, {members} members: skipped ({figures['skipped']})")
                continue
            log(f"broadcast: {name}, {members} members at {rate}/s: p50 "
                f"{figures['latency_us']['p50']:,.0f} µs, p99 {figures['latency_us']['p99']:,.0f}"
                f" µs, {figures['delivered']:,} of {figures['expected']:,} delivered")
        rows.append(row)
    return rows


def markdown_broadcast(rows):
    out = [f"Broadcast through a group ({BROADCAST_SIZE} B text, one publisher, every member "
           "timed from publication):", "",
           "| members | msg/s published | target | p50 µs | p99 µs | max µs | delivered / expected "
           "| duplicates | CPU-s per 1000 deliveries |",
           "|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if "skipped" in row:
            out.append(f"| {row['members']:,} | {row['rate']} | skipped: {row['skipped']} "
                       "| | | | | | |")
            continue
        base = row.get("direct") or {}
        for name in ("direct", "sluice"):
            f = row.get(name)
            if not f:
                continue
            if "skipped" in f:
                out.append(f"| {row['members']:,} | {row['rate']} | {name}: {f['skipped']} "
                           "| | | | | | |")
                continue
            ratio_to = base if f is not base else {}
            lat, base_lat = f["latency_us"], ratio_to.get("latency_us") or {}
            out.append(
                f"| {row['members']:,} | {row['rate']} | {row.get(name + '_label', name)} "
                f"| {cell(lat['p50'], base_lat.get('p50'), '{:,.0f}')} "
                f"| {cell(lat['p99'], base_lat.get('p99'), '{:,.0f}')} | {lat['max']:,.0f} "
                f"| {f['delivered']:,} / {f['expected']:,} | {f['duplicates']} "
                f"| {cell(f.get('cpu_s_per_1000'), ratio_to.get('cpu_s_per_1000'), '{:.4f}')} |")
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------- report

METRICS = [
    # (section, key, label, format, better)
    ("http", "requests_per_s", "HTTP GET /hello, req/s", "{:,.0f}", "higher"),
    ("http", "p50", "HTTP latency p50, µs", "{:,.0f}", "lower"),
    ("http", "p99", "HTTP latency p99, µs", "{:,.0f}", "lower"),
    ("http", "cpu_s_per_1000", "HTTP server CPU-s per 1000 req", "{:.4f}", "lower"),
    ("ws", "messages_per_s", "WS echo, msg/s", "{:,.0f}", "higher"),
    ("ws", "p50", "WS echo latency p50, µs", "{:,.0f}", "lower"),
    ("ws", "p99", "WS echo latency p99, µs", "{:,.0f}", "lower"),
    ("ws", "cpu_s_per_1000", "WS server CPU-s per 1000 msg", "{:.4f}", "lower"),
    ("memory", "kib_per_socket", "KiB per idle WebSocket", "{:.1f}", "lower"),
]


def metric(result, section, key):
    figures = result.get(section)
    if not isinstance(figures, dict):
        return None
    if key in ("p50", "p90", "p99"):
        return figures.get("latency_us", {}).get(key)
    return figures.get(key)


def cell(value, base, fmt):
    """A figure and, when there is a baseline figure to divide by, its ratio to it."""
    if value is None:
        return "–"
    text = fmt.format(value)
    if base:
        text += f" ({value / base:.2f}×)"
    return text


def markdown_main(results):
    targets = results["targets"]
    base = next((t for t in targets if t["key"] == "direct"), None)
    header = "| figure | " + " | ".join(t["label"] for t in targets) + " |"
    lines = [header, "|---|" + "---:|" * len(targets)]
    for section, key, label, fmt, _ in METRICS:
        base_value = metric(base, section, key) if base else None
        row = [cell(metric(t, section, key), base_value if t is not base else None, fmt)
               for t in targets]
        if all(c == "–" for c in row):
            continue
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def markdown_scaling(scaling):
    out = []
    workers = scaling.get("workers")
    if workers:
        one = next((w for w in workers if w["workers"] == 1), None)
        out += ["Sluice throughput by worker count (1 gateway, N workers, one box):", "",
                "| workers | HTTP req/s | vs 1 worker | WS echo msg/s | vs 1 worker |",
                "|---:|---:|---:|---:|---:|"]
        for w in workers:
            rel = [f"{w[k] / one[k]:.2f}×" if one and one.get(k) and w.get(k) else "–"
                   for k in ("requests_per_s", "messages_per_s")]
            out.append(f"| {w['workers']} | {w.get('requests_per_s') or 0:,.0f} | {rel[0]} | "
                       f"{w.get('messages_per_s') or 0:,.0f} | {rel[1]} |")
        out.append("")
    memory = scaling.get("memory")
    if memory:
        out += ["Server memory per idle WebSocket by sockets held (KiB/socket):", "",
                "| sockets held | direct | sluice 1+1 | sluice / direct |", "|---:|---:|---:|---:|"]
        for m in memory:
            d, s = m.get("direct"), m.get("sluice")
            ratio = f"{s / d:.2f}×" if d and s else "–"
            out.append(f"| {m['sockets']:,} | {fmt_opt(d, '{:.1f}')} | {fmt_opt(s, '{:.1f}')} | "
                       f"{ratio} |")
        out.append("")
    latency = scaling.get("latency")
    if latency:
        out += ["WebSocket echo as connections grow (32 B, closed loop):", "",
                "| connections | direct msg/s | direct p50 / p99 µs | sluice msg/s | "
                "sluice p50 / p99 µs | p99 sluice / direct |",
                "|---:|---:|---:|---:|---:|---:|"]
        for row in latency:
            d, s = row.get("direct") or {}, row.get("sluice") or {}

            def lat(x):
                if not x:
                    return "–"
                return f"{x['latency_us']['p50']:,.0f} / {x['latency_us']['p99']:,.0f}"

            ratio = "–"
            if d and s and d["latency_us"]["p99"]:
                ratio = f"{s['latency_us']['p99'] / d['latency_us']['p99']:.2f}×"
            out.append(f"| {row['connections']:,} | {fmt_opt(d.get('messages_per_s'), '{:,.0f}')}"
                       f" | {lat(d)} | {fmt_opt(s.get('messages_per_s'), '{:,.0f}')} | {lat(s)}"
                       f" | {ratio} |")
        out.append("")
    return "\n".join(out)


NOISE_CORES = 0.15  # other processes using more than this share of a core make a figure noisy


def noise_notes(results):
    """Lines naming the measurements during which something else used the machine."""
    measured = []
    for t in results["targets"]:
        for section in ("http", "ws"):
            if isinstance(t.get(section), dict):
                measured.append((f"{t['label']} {section.upper()}", t[section]))
    scaling = results.get("scaling") or {}
    for w in scaling.get("workers") or []:
        for section in ("http", "ws"):
            measured.append((f"sluice 1+{w['workers']} {section.upper()}", w.get(section) or {}))
    for row in scaling.get("latency") or []:
        for name in ("direct", "sluice"):
            measured.append((f"{name} WS {row['connections']} connections", row.get(name) or {}))
    for row in results.get("broadcast") or []:
        for name in ("direct", "sluice"):
            measured.append((f"{name} broadcast to {row['members']}", row.get(name) or {}))
    notes, seen = [], set()
    for label, figures in measured:
        other, steal = figures.get("other_cores", 0), figures.get("steal_cores", 0)
        niced = figures.get("other_niced_cores", 0)
        if (other > NOISE_CORES or steal > NOISE_CORES) and label not in seen:
            seen.add(label)
            notes.append(f"- {label}: other processes used {other:.2f} of a core"
                         + (f" ({niced:.2f} niced)" if niced >= 0.01 else "")
                         + (f", the hypervisor took {steal:.2f}" if steal > NOISE_CORES else ""))
    if not notes:
        return ""
    return "\n".join(["Noisy figures (the machine was not the benchmark's alone):"] + notes) + "\n"


def skipped_figures(results):
    """Targets left out, and held-socket figures that did not fit the descriptor limit."""
    skipped = list(results["skipped"])
    for t in results["targets"]:
        if isinstance(t.get("memory"), dict) and "skipped" in t["memory"]:
            skipped.append({"target": f"{t['label']} memory", "reason": t["memory"]["skipped"]})
    for row in (results.get("scaling") or {}).get("memory") or []:
        for name in ("direct", "sluice"):
            figures = row.get(f"{name}_figures") or {}
            if "skipped" in figures:
                skipped.append({"target": f"{name} {row['sockets']} held",
                                "reason": figures["skipped"]})
    return skipped


def fmt_opt(value, fmt):
    return "–" if value is None else fmt.format(value)


def gnuplot_quote(text):
    return '"' + text.replace('"', "'") + '"'


def plot(results, stem):
    """SVG plots with gnuplot (no fonts needed); returns the files written."""
    if not shutil.which("gnuplot"):
        return []
    written = []
    targets = results["targets"]
    base = next((t for t in targets if t["key"] == "direct"), None)
    rows = []
    for t in targets:
        ratios = []
        for section, key in (("http", "requests_per_s"), ("ws", "messages_per_s"),
                             ("http", "p50"), ("http", "p99"), ("ws", "p50"), ("ws", "p99")):
            v, b = metric(t, section, key), metric(base, section, key) if base else None
            ratios.append(f"{v / b:.4f}" if v is not None and b else "NaN")
        rows.append(gnuplot_quote(t["label"]) + " " + " ".join(ratios))
    measured = any(r != "NaN" for row in rows for r in row.split()[-6:])
    if base and len(targets) > 1 and measured:  # e.g. not for --only memory
        data = Path(f"{stem}-ratios.dat")
        data.write_text("# label http_rps ws_mps http_p50 http_p99 ws_p50 ws_p99 (x baseline)\n"
                        + "\n".join(rows) + "\n")
        svg = Path(f"{stem}-ratios.svg")
        script = f"""
set terminal svg size 1100,460 dynamic background rgb 'white' font 'sans,11'
set encoding utf8
set output '{svg}'
set multiplot layout 1,2 title 'sluice benchmark: ratio to the direct Beast baseline ({results["mode"]} run)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set grid ytics
set key below
set xtics rotate by -20
set title 'Throughput (x baseline, higher is better)'
set yrange [0:*]
plot '{data}' using 2:xtic(1) title 'HTTP req/s', '' using 3 title 'WS msg/s', 1 with lines dt 2 lc 'black' notitle
set title 'Latency (x baseline, lower is better)'
set logscale y
set yrange [0.5:*]
plot '{data}' using 4:xtic(1) title 'HTTP p50', '' using 5 title 'HTTP p99', '' using 6 title 'WS p50', '' using 7 title 'WS p99', 1 with lines dt 2 lc 'black' notitle
unset multiplot
"""
        if run_gnuplot(script):
            written.append(svg)
    scaling = results.get("scaling") or {}
    if scaling.get("workers") or scaling.get("latency") or scaling.get("memory"):
        svg = Path(f"{stem}-scaling.svg")
        panels = []
        if scaling.get("workers"):
            data = Path(f"{stem}-workers.dat")
            data.write_text("# workers http_rps ws_mps\n" + "".join(
                f"{w['workers']} {w.get('requests_per_s') or 'NaN'} {w.get('messages_per_s') or 'NaN'}\n"
                for w in scaling["workers"]))
            panels.append(f"""
set title 'sluice throughput by workers'
set xlabel 'workers'; set ylabel 'per second'; unset logscale; set logscale x 2
set xrange [0.8:5]; set yrange [0:*]; set xtics (1, 2, 4); set key bottom left
plot '{data}' using 1:2 with linespoints title 'HTTP req/s', '' using 1:3 with linespoints title 'WS msg/s'
""")
        if scaling.get("latency"):
            data = Path(f"{stem}-latency.dat")
            lines = []
            for row in scaling["latency"]:
                d, s = row.get("direct") or {}, row.get("sluice") or {}
                values = [d.get("latency_us", {}).get("p50"), d.get("latency_us", {}).get("p99"),
                          s.get("latency_us", {}).get("p50"), s.get("latency_us", {}).get("p99")]
                lines.append(f"{row['connections']} " + " ".join(
                    "NaN" if v is None else str(v) for v in values))
            data.write_text("# connections direct_p50 direct_p99 sluice_p50 sluice_p99 (us)\n"
                            + "\n".join(lines) + "\n")
            panels.append(f"""
set title 'WS echo latency by connections'
set xlabel 'connections'; set ylabel 'µs'; unset logscale; set logscale xy
set xrange [40:1250]; set yrange [*:*]; set xtics (50, 200, 500, 1000); set key top left
plot '{data}' using 1:2 with linespoints title 'direct p50', '' using 1:3 with linespoints title 'direct p99', '' using 1:4 with linespoints title 'sluice p50', '' using 1:5 with linespoints title 'sluice p99'
""")
        if scaling.get("memory"):
            data = Path(f"{stem}-memory.dat")
            data.write_text("# sockets direct_kib sluice_kib\n" + "".join(
                f"{m['sockets']} {m.get('direct') or 'NaN'} {m.get('sluice') or 'NaN'}\n"
                for m in scaling["memory"]))
            panels.append(f"""
set title 'KiB per idle WebSocket'
set xlabel 'sockets held'; set ylabel 'KiB'; unset logscale; set logscale x
set xrange [800:12500]; set yrange [0:*]; set xtics (1000, 5000, 10000); set key bottom right
plot '{data}' using 1:2 with linespoints title 'direct', '' using 1:3 with linespoints title 'sluice 1+1'
""")
        script = (f"set terminal svg size {400 * len(panels) + 100},420 dynamic background rgb "
                  f"'white' font 'sans,11'\nset encoding utf8\nset output '{svg}'\nset grid\nset key top left\n"
                  f"set multiplot layout 1,{len(panels)} title 'sluice scaling on one box'\n"
                  + "".join(panels) + "unset multiplot\n")
        if run_gnuplot(script):
            written.append(svg)
    return written


def run_gnuplot(script):
    try:
        out = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True,
                             errors="replace", timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"bench: gnuplot failed: {e}", file=sys.stderr)
        return False
    if out.returncode != 0:
        print(f"bench: gnuplot failed: {out.stderr.strip()}", file=sys.stderr)
        return False
    return True


# ---------------------------------------------------------------------------- the run

class Context:
    def __init__(self, args, log_dir):
        self.build = Path(args.build_dir)
        if not self.build.is_absolute():
            self.build = REPO / self.build
        self.compare = Path(args.compare_build).resolve() if args.compare_build else None
        self.smoke = args.smoke
        self.duration = 1 if args.smoke else args.duration
        self.warmup = 0.3 if args.smoke else min(2.0, max(1.0, args.duration / 5))
        self.idle_sockets = args.idle_sockets if args.idle_sockets else (200 if args.smoke else 2000)
        self.settle_timeout = 3.0 if args.smoke else 10.0
        self.log_dir = log_dir
        held = [self.idle_sockets] + ([] if args.smoke else list(SCALING_HELD))
        # Room for every held socket plus the echo runs, so capacity never answers 503.
        self.worker_capacity = max(10000, max(held) + 2000)

    def build_type(self):
        try:
            cache = (self.build / "CMakeCache.txt").read_text()
            return re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", cache, re.M).group(1)
        except (OSError, AttributeError):
            return "unknown"

    def bin(self, relative, build=None):
        path = (build or self.build) / relative
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise SetupError(f"{path} not found: build first (bench/run.sh builds it)")
        return path


def host_info():
    info = {"cores": os.cpu_count(), "kernel": platform.release(), "nofile": nofile_limit(),
            "loadavg_at_start": list(os.getloadavg())}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["memory_kib"] = int(re.search(r"MemTotal:\s+(\d+)",
                                           Path("/proc/meminfo").read_text()).group(1))
    except (OSError, AttributeError):
        pass
    try:
        info["git_commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                                            capture_output=True, text=True).stdout.strip()
        info["git_dirty"] = bool(subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True).stdout.strip())
    except OSError:
        pass
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
        info["wrk"] = ((wrk.stdout or wrk.stderr).splitlines() or [""])[0]
    except OSError:
        info["wrk"] = "not found"
    return info


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def start_clean(start):
    """Runs a start function; if it fails half-way, stops what it had started, so no stray
    server runs beside the next target's measurements."""
    before = list(RUNNING)
    try:
        return start()
    except BaseException:
        for proc in [p for p in RUNNING if p not in before]:
            proc.stop()
        raise


def run_target(ctx, start, figures):
    """Starts a target, measures the figures asked for (memory first, on a fresh process),
    stops it; returns its results."""
    target = start_clean(start)
    result = {"key": target.key, "label": target.label, "kind": target.kind,
              "settings": target.settings}
    try:
        log(f"{target.label}: up on port {target.port} (pids {target.pids})")
        if "memory" in figures:
            result["memory"] = measure_memory(ctx, target, ctx.idle_sockets)
            log(f"{target.label}: {result['memory'].get('kib_per_socket', '–')} KiB per idle "
                f"WebSocket ({ctx.idle_sockets} held)")
        if "http" in figures:
            result["http"] = measure_http(ctx, target)
            log(f"{target.label}: HTTP {result['http']['requests_per_s']:,.0f} req/s")
        if "ws" in figures:
            result["ws"] = measure_ws(ctx, target)
            log(f"{target.label}: WS echo {result['ws']['messages_per_s']:,.0f} msg/s")
        if not target.alive():
            raise SetupError(f"{target.label}: a server process died during the run")
    except (SetupError, OSError, ValueError, KeyError) as e:
        # Often the consequence of a server that died (its /proc gone, no answers): say so.
        dead = [p for p in target.procs if p.popen.poll() is not None]
        detail = "".join(f"\n  {p.name} exited with {p.popen.returncode}:\n{p.tail()}"
                         for p in dead)
        message = str(e) if isinstance(e, SetupError) else f"{type(e).__name__}: {e}"
        if not message.startswith(target.label):
            message = f"{target.label}: {message}"
        raise SetupError(message + detail) from e
    finally:
        target.stop()
    return result


def scaling_workers(ctx, by_key):
    rows = []
    for n in SCALING_WORKERS:
        known = by_key.get(f"sluice-{n}w")
        if known and "http" in known and "ws" in known:
            source = known
        else:
            source = run_target(ctx, lambda n=n: start_sluice(ctx, n), ("http", "ws"))
        rows.append({"workers": n, "requests_per_s": source["http"]["requests_per_s"],
                     "messages_per_s": source["ws"]["messages_per_s"],
                     "http": source["http"], "ws": source["ws"]})
    return rows


def scaling_memory(ctx):
    rows = []
    for sockets in SCALING_HELD:
        row = {"sockets": sockets}
        for name, start in (("direct", lambda: start_direct(ctx)),
                            ("sluice", lambda: start_sluice(ctx, 1))):
            target = start_clean(start)
            try:
                figures = measure_memory(ctx, target, sockets)
            finally:
                target.stop()
            row[name] = figures.get("kib_per_socket")
            row[f"{name}_figures"] = figures
            log(f"scaling: {name}, {sockets} held: "
                f"{figures.get('kib_per_socket', figures.get('skipped'))} KiB per socket")
        rows.append(row)
    return rows


def scaling_latency(ctx, by_key):
    rows = [{"connections": c} for c in SCALING_CONNECTIONS]
    for name, key, start in (("direct", "direct", lambda: start_direct(ctx)),
                             ("sluice", "sluice-1w", lambda: start_sluice(ctx, 1))):
        known = by_key.get(key, {}).get("ws")
        target = None
        try:
            for row in rows:
                if row["connections"] == ECHO_CONNECTIONS and known:
                    row[name] = known
                    continue
                if target is None:
                    target = start_clean(start)
                row[name] = measure_ws(ctx, target, row["connections"])
                log(f"scaling: {name}, {row['connections']} connections: "
                    f"{row[name]['messages_per_s']:,.0f} msg/s, p99 "
                    f"{row[name]['latency_us']['p99']:,.0f} µs")
        finally:
            if target:
                target.stop()
    return rows


def run_scaling(ctx, results):
    """The scaling runs (issue 7, item 4); a part that fails is reported, the others run."""
    scaling = {}
    by_key = {t["key"]: t for t in results["targets"]}
    parts = (("workers", "throughput by workers", lambda: scaling_workers(ctx, by_key)),
             ("memory", "memory per idle WebSocket by sockets held (a fresh server for each)",
              lambda: scaling_memory(ctx)),
             ("latency", "WebSocket echo by connections", lambda: scaling_latency(ctx, by_key)))
    for key, what, run in parts:
        log(f"scaling: {what}")
        try:
            scaling[key] = run()
        except (SetupError, OSError, ValueError, KeyError) as e:
            log(f"FAILED: scaling {key}: {e}")
            results["errors"].append({"target": f"scaling {key}", "error": str(e)})
    return scaling


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build-release")
    parser.add_argument("--duration", type=int, default=10,
                        help="seconds per measured figure (wrk needs whole seconds)")
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds in all: 1 s figures, 200 held sockets, no peers, "
                             "no scaling")
    parser.add_argument("--only", choices=("http", "ws", "memory", "scaling", "broadcast"))
    parser.add_argument("--idle-sockets", type=int, default=0,
                        help="WebSockets held for the memory figure (default 2000; smoke 200)")
    parser.add_argument("--no-peers", action="store_true", help="skip uvicorn and Daphne")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--compare-build", metavar="DIR",
                        help="also run sluice 1+1 from this build tree (A/B of a change)")
    args = parser.parse_args()
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be 1..600 seconds")
    if args.idle_sockets and not 1 <= args.idle_sockets <= 100000:
        parser.error("--idle-sockets must be 1..100000")

    # SIGINT too, even if inherited as ignored (a background job's): the driver must stop.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix=f"logs-{stamp}-", dir=RESULTS_DIR))
    ctx = Context(args, log_dir)
    figures = (("memory", "http", "ws") if args.only in (None, "scaling", "broadcast")
               else (args.only,))
    mode = "smoke" if args.smoke else ("full" if args.only is None else f"only-{args.only}")
    results = {
        "timestamp": stamp, "mode": mode, "host": host_info(),
        "settings": {
            "build_dir": str(ctx.build), "build_type": ctx.build_type(),
            "duration_s": ctx.duration, "warmup_s": ctx.warmup,
            "http": f"wrk -t1 -c{HTTP_CONNECTIONS} -d{ctx.duration}s --latency GET /hello",
            "ws_echo": {"connections": ECHO_CONNECTIONS, "size": ECHO_SIZE, "threads": 1},
            "idle_sockets": ctx.idle_sockets, "hold_concurrency": HOLD_CONCURRENCY,
            "worker_capacity": ctx.worker_capacity,
            "server_cpus": sorted(SERVER_CPUS) if SERVER_CPUS else "any",
            "generator_cpus": sorted(GENERATOR_CPUS) if GENERATOR_CPUS else "any",
        },
        "targets": [], "skipped": [], "errors": [],
    }
    failed = False
    try:
        log(f"{mode} run; {ctx.duration} s per figure; nofile limit {nofile_limit()}; "
            f"logs in {log_dir}")
        starts = []
        if args.only not in ("scaling", "broadcast"):
            starts = [("direct", lambda: start_direct(ctx)),
                      ("sluice 1+1", lambda: start_sluice(ctx, 1)),
                      ("sluice 1+2", lambda: start_sluice(ctx, 2)),
                      ("sluice 1+1, 1 thread each", lambda: start_sluice(ctx, 1, threads=1)),
                      ("sluice 1+1, 1 thread each, one core",
                       lambda: start_sluice(ctx, 1, threads=1, one_core=True))]
            if ctx.compare:
                starts.append((f"sluice 1+1 ({ctx.compare.name})",
                               lambda: start_sluice(ctx, 1, build=ctx.compare)))
            if args.smoke or args.no_peers:
                results["skipped"].append({"target": "peers", "reason": "not in this mode"})
            else:
                available, reason = peers_available()
                if available:
                    results["host"]["peers"] = peer_versions()
                    starts += [("Channels + uvicorn", lambda: start_peer(ctx, "uvicorn")),
                               ("Channels + daphne", lambda: start_peer(ctx, "daphne"))]
                else:
                    log(f"peers skipped: {reason}")
                    results["skipped"].append({"target": "peers", "reason": reason})
        for label, start in starts:
            try:
                results["targets"].append(run_target(ctx, start, figures))
            except SetupError as e:
                log(f"FAILED: {e}")
                results["errors"].append({"target": label, "error": str(e)})
                failed = True
        if args.only == "scaling" or (args.only is None and not args.smoke):
            results["scaling"] = run_scaling(ctx, results)
        if args.only in (None, "broadcast"):
            log("broadcast")
            results["broadcast"] = run_broadcast(ctx, results)
        failed = failed or bool(results["errors"])
    except KeyboardInterrupt as e:
        log(f"interrupted ({e or 'SIGINT'}); stopping everything")
        failed = True
        results["errors"].append({"target": "run", "error": "interrupted"})
    finally:
        stop_all()

    stem = RESULTS_DIR / stamp
    report = [f"# sluice benchmark, {mode} run ({stamp})", "",
              f"{results['host'].get('cores')} cores ({results['host'].get('cpu', '?')}), "
              f"load generator on the same box. HTTP: wrk -t1 -c{HTTP_CONNECTIONS}, "
              f"{ctx.duration} s. WS: {ECHO_CONNECTIONS} connections, {ECHO_SIZE} B echo, "
              f"{ctx.duration} s after {ctx.warmup:g} s warm-up. Memory: {ctx.idle_sockets} idle "
              f"WebSockets. (×) = ratio to the direct baseline. The direct server, the peers and "
              f"the \"one core\" column run on CPU {results['settings']['server_cpus']}, the load "
              f"generators on {results['settings']['generator_cpus']}.", ""]
    if results["settings"]["build_type"] != "Release":
        report += [f"Built as {results['settings']['build_type']}, not Release: "
                   f"the figures do not stand for sluice's speed.", ""]
    table = markdown_main(results) if results["targets"] else ""
    if table:
        report += [table, ""]
    if results.get("scaling"):
        report += [markdown_scaling(results["scaling"])]
    if results.get("broadcast"):
        report += [markdown_broadcast(results["broadcast"])]
    noise = noise_notes(results)
    if noise:
        report += [noise]
    for skipped in skipped_figures(results):
        report.append(f"Skipped {skipped['target']}: {skipped['reason']}.")
    for error in results["errors"]:
        report.append(f"FAILED {error['target']}: {error['error'].splitlines()[0]}")
    text = "\n".join(report).rstrip() + "\n"
    stem.with_suffix(".md").write_text(text)
    plots = plot(results, str(stem))
    results["plots"] = [p.name for p in plots]
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    print(f"results: {stem}.json, {stem}.md" + "".join(f", {p}" for p in plots))
    if failed or args.keep_logs:
        print(f"logs: {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
