"""Fixtures for the sluice end-to-end suite: real gateway and worker processes.

Fixtures
--------
start_worker(capacity=None, threads=None, admin=False, extra_args=())
                                      -> Proc (ready: printed its port)
start_gateway(workers, threads=None, wait_ready=True, admin=False, extra_args=())
                                      -> Proc (ready: GET /hello == 200)
stack                                 -> Stack(worker, gateway)
redis_server                          -> RedisServer(host, port, url, proc): a private
                                         redis-server (skipped when not installed)

Gateways get `--drain-timeout 1` unless extra_args give one: teardown's SIGTERM would
otherwise wait out the default 10 s on any WebSocket left open.

With admin=True the process is started with `--admin 127.0.0.1:0`; the fixture waits for its
"... admin on HOST:PORT" line and sets `proc.admin_port` (see e2e_helpers.scrape_metrics).

Every process is stopped in teardown (SIGTERM, up to 5 s, then SIGKILL), also when the test
failed. stderr/stdout of each process go to files under the test's tmp_path; when a test
fails, the tail of each process's stderr is attached to the failure report.

Sanitizer builds (SLUICE_SANITIZE=address|thread, see scripts/test.sh): teardown fails the
test when a process's stderr holds a sanitizer report (even a process the test killed on
purpose) or the process exited with the sanitizers' exit code, and quotes the report.
ASAN_OPTIONS / UBSAN_OPTIONS / LSAN_OPTIONS / TSAN_OPTIONS get defaults (below) when unset.
SLUICE_TEST_SLOWDOWN (default 1) multiplies this file's waits for a process (ready line,
first 200, stop), for slower sanitizer builds. Tests marked `tsan` make up the focused
subset the ThreadSanitizer stage runs (`-m tsan`); in sanitizer builds `long_running` ones
are skipped (SLUICE_SKIP_LONG=0 runs them anyway) and RSS bounds do not bind
(e2e_helpers.RSS_BOUNDS_BIND).
"""

import ctypes
import itertools
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import e2e_helpers
from e2e_helpers import http_request

REPO = Path(__file__).resolve().parents[2]

# Sanitizer builds are several times slower; SLUICE_TEST_SLOWDOWN stretches the fixtures' waits.
SLOWDOWN = max(1.0, float(os.environ.get("SLUICE_TEST_SLOWDOWN", "1") or 1))
READY_LINE_TIMEOUT = 10.0 * SLOWDOWN  # seconds to wait for "... listening on HOST:PORT"
GATEWAY_READY_TIMEOUT = 10.0 * SLOWDOWN  # seconds to wait for GET /hello == 200
STOP_TIMEOUT = 5.0 * SLOWDOWN  # seconds between SIGTERM and SIGKILL (teardown)
GATEWAY_DRAIN_TIMEOUT = 1  # --drain-timeout of gateways unless a test gives its own
TAIL_LINES = 60

# What a sanitizer prints when it reports (ASan, LSan, UBSan, TSan), and the exit code the
# default options below give a process whose sanitizer reported (TSan's default, 66).
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "ERROR: ThreadSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "runtime error:",
)
SANITIZER_EXIT_CODE = 66
REPORT_LINES = 80  # of a sanitizer report quoted in the failure
_SUPPRESSIONS = REPO / "tests" / "sanitizers"
# Defaults for a sanitizer build when the variable is unset (scripts/test.sh sets the same).
def _suppressions(kind: str) -> str:
    path = _SUPPRESSIONS / f"{kind}.supp"
    return f"suppressions={path}:" if path.is_file() else ""


SANITIZER_ENV_DEFAULTS = {
    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=1:check_initialization_order=1",
    "UBSAN_OPTIONS": f"{_suppressions('ubsan')}print_stacktrace=1:halt_on_error=1:abort_on_error=1",
    "LSAN_OPTIONS": f"{_suppressions('lsan')}print_suppressions=0",
    "TSAN_OPTIONS": f"{_suppressions('tsan')}halt_on_error=0:exitcode={SANITIZER_EXIT_CODE}:"
    "second_deadlock_stack=1:print_suppressions=0",
}


def _process_env() -> dict:
    env = dict(os.environ)
    for name, value in SANITIZER_ENV_DEFAULTS.items():
        env.setdefault(name, value)
    return env


def sanitizer_build() -> str:
    """SLUICE_SANITIZE of the build under test ("", "address" or "thread")."""
    try:
        cache = (build_dir() / "CMakeCache.txt").read_text("utf-8", "replace")
    except OSError:
        return ""
    match = re.search(r"^SLUICE_SANITIZE:\w+=(.*)$", cache, re.MULTILINE)
    value = match.group(1).strip().lower() if match else ""
    if value in ("on", "yes", "true", "y", "1"):
        return "address"
    return "" if value in ("", "off", "no", "false", "n", "0", "none") else value


def sanitizer_report(path) -> str:
    """The first sanitizer report in a log file ("" if none): from its first line on."""
    try:
        lines = Path(path).read_text("utf-8", "replace").splitlines()
    except OSError:
        return ""
    for i, line in enumerate(lines):
        if any(marker in line for marker in SANITIZER_MARKERS):
            start = i
            # a report starts with a "====" line and a "==PID==ERROR" line: quote those too
            while start > 0 and i - start < 2 and lines[start - 1].startswith("=="):
                start -= 1
            return "\n".join(lines[start:start + REPORT_LINES])
    return ""


def build_dir() -> Path:
    value = os.environ.get("SLUICE_BUILD_DIR")
    if not value:
        return REPO / "build"
    path = Path(value)
    return path if path.is_absolute() else (Path.cwd() / path).resolve()


def require_binary(relative: str) -> Path:
    path = build_dir() / relative
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"binary not found or not executable: {path}\n"
            f"(build the project, or set SLUICE_BUILD_DIR to the build directory)",
            pytrace=False,
        )
    return path


def _set_parent_death_signal():
    # If pytest dies without running teardown, the kernel kills the child.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Proc:
    """One sluice process. stdout is read by a thread; stderr goes to a file."""

    def __init__(self, name: str, argv: list, log_dir: Path):
        self.name = name
        self.argv = argv
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self.stderr_path = log_dir / f"{name}.stderr.log"
        self.host = None
        self.port = None
        self.admin_port = None  # set by wait_for_admin (processes started with admin=True)
        self.expected_exit = False  # set when the test kills the process on purpose
        self._stderr_file = open(self.stderr_path, "wb")
        self._lines: "queue.Queue[bytes | None]" = queue.Queue()
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            preexec_fn=_set_parent_death_signal,
            env=_process_env(),
        )
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _read_stdout(self):
        with open(self.stdout_path, "wb") as out:
            for line in iter(self.popen.stdout.readline, b""):
                out.write(line)
                out.flush()
                self._lines.put(line)
        self._lines.put(None)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _wait_for_line(self, pattern: "re.Pattern", what: str, timeout: float,
                       fail_on_exit: bool = True):
        """Wait (bounded) for a stdout line matching `pattern`; return the match. If the
        process exits first: fail, or return None when `fail_on_exit` is False."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(
                    f"{self.name}: no '{what}' line on stdout within {timeout:.0f} s\n"
                    f"{self.describe()}",
                    pytrace=False,
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                if not fail_on_exit:
                    return None
                try:
                    code = self.popen.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    code = "(still running, stdout closed)"
                pytest.fail(
                    f"{self.name}: exited (code {code}) before printing '{what}'"
                    f"\n{self.describe()}",
                    pytrace=False,
                )
            match = pattern.match(line)
            if match:
                return match

    def wait_for_listening(self, banner: str, timeout: float = READY_LINE_TIMEOUT):
        """Wait (bounded) for the line '<banner> listening on HOST:PORT' on stdout."""
        pattern = re.compile(rb"^" + re.escape(banner.encode()) + rb" listening on (\S+):(\d+)\s*$")
        match = self._wait_for_line(pattern, f"{banner} listening on HOST:PORT", timeout)
        self.host = match.group(1).decode()
        self.port = int(match.group(2))
        assert self.port != 0, f"{self.name} reported port 0: {match.group(0)!r}"

    def wait_for_admin(self, banner: str, timeout: float = READY_LINE_TIMEOUT):
        """Wait (bounded) for the line '<banner> admin on HOST:PORT' on stdout."""
        pattern = re.compile(rb"^" + re.escape(banner.encode()) + rb" admin on (\S+):(\d+)\s*$")
        match = self._wait_for_line(pattern, f"{banner} admin on HOST:PORT", timeout)
        self.admin_port = int(match.group(2))
        assert self.admin_port != 0, f"{self.name} reported admin port 0: {match.group(0)!r}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self):
        """SIGKILL on purpose (the test expects the process to be gone)."""
        self.expected_exit = True
        if self.alive():
            self.popen.kill()
        self.popen.wait(timeout=STOP_TIMEOUT)

    def terminate_and_wait(self, sig=signal.SIGTERM, timeout: float = STOP_TIMEOUT):
        """Send `sig`; return the exit code, or None if it had to be SIGKILLed."""
        self.expected_exit = True
        if not self.alive():
            return self.popen.returncode
        self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT)
            return None

    def shutdown(self) -> list:
        """Teardown: stop the process; return a list of problems found."""
        problems = []
        if not self.alive():
            if not self.expected_exit:
                problems.append(
                    f"{self.name} exited during the test with code {self.popen.returncode}"
                )
        else:
            code = self.terminate_and_wait(signal.SIGTERM)
            if code is None:
                problems.append(
                    f"{self.name} did not exit within {STOP_TIMEOUT:.0f} s of SIGTERM (SIGKILLed)"
                )
            elif code < 0 and code != -signal.SIGTERM:
                problems.append(
                    f"{self.name} died with signal {signal.Signals(-code).name} after SIGTERM"
                )
            elif code == SANITIZER_EXIT_CODE:
                problems.append(
                    f"{self.name} exited with code {code} after SIGTERM (a sanitizer reported)"
                )
        self._reader.join(timeout=2)
        if self.popen.stdout:
            self.popen.stdout.close()
        self._stderr_file.close()
        report = sanitizer_report(self.stderr_path)
        if report:
            problems.append(
                f"{self.name}: sanitizer report on stderr ({self.stderr_path}):\n{report}"
            )
        return problems

    def stderr_tail(self, lines: int = TAIL_LINES) -> str:
        try:
            data = self.stderr_path.read_bytes()
        except OSError as exc:
            return f"(cannot read {self.stderr_path}: {exc})"
        text = data.decode("utf-8", "replace").splitlines()
        return "\n".join(text[-lines:]) if text else "(empty)"

    def describe(self) -> str:
        return (
            f"command: {' '.join(self.argv)}\n"
            f"--- {self.name} stderr (last {TAIL_LINES} lines, {self.stderr_path}) ---\n"
            f"{self.stderr_tail()}"
        )


def pytest_configure(config):
    e2e_helpers.RSS_BOUNDS_BIND = not sanitizer_build()
    config.addinivalue_line(
        "markers",
        "tsan: in the ThreadSanitizer stage's focused subset (cross-thread paths: link up and "
        "down, keep-alive, WebSocket echo, backpressure, a worker killed)",
    )
    config.addinivalue_line(
        "markers",
        "long_running: takes minutes; skipped in sanitizer builds unless SLUICE_SKIP_LONG=0",
    )
    config.addinivalue_line(
        "markers",
        "browser: drives a real headless Chromium through Node (tests/browser); "
        "`-m 'not browser'` leaves these out",
    )


def pytest_collection_modifyitems(config, items):
    sanitizer = sanitizer_build()
    if not sanitizer:
        return
    skip_long = os.environ.get("SLUICE_SKIP_LONG", "1") != "0"
    for item in items:
        if skip_long and "long_running" in item.keywords:
            item.add_marker(pytest.mark.skip(
                reason=f"long-running test skipped in the {sanitizer} sanitizer build to bound "
                f"CI time (it runs in the normal build; SLUICE_SKIP_LONG=0 runs it here)"
            ))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for proc in getattr(item, "_sluice_procs", []):
            report.sections.append(
                (
                    f"{proc.name} stderr, last {TAIL_LINES} lines ({proc.stderr_path})",
                    f"command: {' '.join(proc.argv)}\n{proc.stderr_tail()}",
                )
            )


@pytest.fixture
def _procs(request):
    procs: list = []
    request.node._sluice_procs = procs
    yield procs
    problems = []
    for proc in reversed(procs):  # gateways (started last) go first
        try:
            problems += proc.shutdown()
        except Exception as exc:  # keep stopping the others
            problems.append(f"{proc.name}: error while stopping: {exc!r}")
    if problems:
        pytest.fail("process teardown problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def start_worker(_procs, tmp_path):
    counter = itertools.count(1)

    def start(*, capacity=None, threads=None, admin=False, extra_args=(),
              listen="127.0.0.1:0") -> Proc:
        exe = require_binary("demo/sluice-demo-worker")
        argv = [str(exe), "--listen", listen]
        if capacity is not None:
            argv += ["--capacity", str(capacity)]
        if threads is not None:
            argv += ["--threads", str(threads)]
        if admin:
            argv += ["--admin", "127.0.0.1:0"]
        argv += list(extra_args)
        proc = Proc(f"worker{next(counter)}", argv, tmp_path)
        _procs.append(proc)
        proc.wait_for_listening("sluice-worker")
        if admin:
            proc.wait_for_admin("sluice-worker")
        return proc

    return start


def _worker_address(worker) -> str:
    if isinstance(worker, Proc):
        return worker.address
    if isinstance(worker, int):
        return f"127.0.0.1:{worker}"
    return str(worker)


def wait_gateway_ready(gateway: Proc, timeout: float = GATEWAY_READY_TIMEOUT):
    """Poll GET /hello until 200 (the gateway links to workers asynchronously)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not gateway.alive():
            pytest.fail(
                f"{gateway.name} exited (code {gateway.popen.returncode}) while waiting for "
                f"GET /hello == 200\n{gateway.describe()}",
                pytrace=False,
            )
        try:
            resp = http_request(gateway.port, "GET", "/hello", timeout=2)
            last = f"HTTP {resp.status}"
            if resp.status == 200:
                return
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.05)
    pytest.fail(
        f"gateway not ready: GET /hello did not return 200 within {timeout:.0f} s "
        f"(last: {last})\n{gateway.describe()}",
        pytrace=False,
    )


@pytest.fixture
def start_gateway(_procs, tmp_path):
    counter = itertools.count(1)

    def start(workers, *, threads=None, wait_ready=True, admin=False, extra_args=()) -> Proc:
        exe = require_binary("gateway/sluice-gateway")
        if isinstance(workers, (Proc, int, str)):
            workers = [workers]
        argv = [
            str(exe),
            "--listen",
            "127.0.0.1:0",
            "--workers",
            ",".join(_worker_address(w) for w in workers),
        ]
        if threads is not None:
            argv += ["--threads", str(threads)]
        if admin:
            argv += ["--admin", "127.0.0.1:0"]
        if "--drain-timeout" not in extra_args:
            # Teardown's SIGTERM waits STOP_TIMEOUT: an open WebSocket holds a gateway for
            # its drain timeout (then gets 1001), so keep that well under it.
            argv += ["--drain-timeout", str(GATEWAY_DRAIN_TIMEOUT)]
        argv += list(extra_args)
        proc = Proc(f"gateway{next(counter)}", argv, tmp_path)
        _procs.append(proc)
        proc.wait_for_listening("sluice-gateway")
        if admin:
            proc.wait_for_admin("sluice-gateway")
        if wait_ready:
            wait_gateway_ready(proc)
        return proc

    return start


@dataclass
class Stack:
    worker: Proc
    gateway: Proc

    @property
    def port(self) -> int:
        return self.gateway.port


@pytest.fixture
def stack(start_worker, start_gateway) -> Stack:
    worker = start_worker()
    gateway = start_gateway([worker])
    return Stack(worker, gateway)


class RedisServer:
    """A private redis-server on 127.0.0.1:`port` without persistence. `kill()` and
    `restart()` (on the same port, empty) stage a Redis outage."""

    def __init__(self, exe: str, port: int, log_dir: Path, procs: list):
        self.host = "127.0.0.1"
        self.port = port
        self.argv = [exe, "--port", str(port), "--bind", self.host, "--save", "",
                     "--appendonly", "no", "--dir", str(log_dir)]
        self._log_dir = log_dir
        self._procs = procs
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> bool:
        """Start it; wait (bounded) until it listens. False if it exited first (the port
        was taken)."""
        self.proc = Proc(f"redis{len(self._procs)}", self.argv, self._log_dir)
        self._procs.append(self.proc)
        # redis-server logs this line (flushed) once it listens. A missing line past the
        # timeout fails.
        if self.proc._wait_for_line(REDIS_READY, "Ready to accept connections",
                                    READY_LINE_TIMEOUT, fail_on_exit=False):
            return True
        self.proc.expected_exit = True
        return False

    def kill(self):
        self.proc.kill()

    def restart(self):
        assert self.start(), f"redis-server did not start again\n{self.proc.describe()}"

    def command(self, *args, timeout: float = 5.0) -> bytes:
        """One command on a fresh connection; the reply's first line (e.g. b"+PONG"), then,
        for a bulk string, its payload (b"$5" + b"hello" -> b"hello")."""
        return redis_command(self.port, *args, timeout=timeout)


def redis_command(port: int, *args, timeout: float = 5.0) -> bytes:
    request = b"*%d\r\n" % len(args)
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        request += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        reply = sock.makefile("rb")
        line = reply.readline().rstrip(b"\r\n")
        if line.startswith(b"$") and line != b"$-1":
            return reply.read(int(line[1:]) + 2)[:-2]
        return line


REDIS_READY = re.compile(rb".*Ready to accept connections")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_server(_procs, tmp_path) -> RedisServer:
    """A private redis-server on a free port of 127.0.0.1, no persistence, ready (answers
    PING); stopped in teardown like the sluice processes (SIGTERM, then SIGKILL)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed (scripts/setup.sh installs it)")
    for _ in range(3):  # the free port can be taken before redis-server binds it
        server = RedisServer(exe, _free_port(), tmp_path, _procs)
        if server.start():
            return server
    pytest.fail(f"redis-server exited at start 3 times\n{server.proc.describe()}", pytrace=False)
