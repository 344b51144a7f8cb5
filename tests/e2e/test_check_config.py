"""`--check-config` on the gateway and on every worker (RunWorker): the flags are parsed and
validated, one summary line is printed and the process exits 0, or it exits 2 with an error
that names the flag. Nothing is bound, connected or run (k8s/check.sh relies on this to
check the manifests' command lines)."""

import os
import socket
import subprocess

import pytest

from conftest import require_binary

CONFIG_ERROR = 2


def run(binary: str, *args, env=None) -> subprocess.CompletedProcess:
    exe = require_binary(binary)
    return subprocess.run([str(exe), *args, "--check-config"], capture_output=True, text=True,
                          timeout=10, env=env)


def gateway(*args, **kwargs):
    return run("gateway/sluice-gateway", *args, **kwargs)


def worker(*args, **kwargs):
    return run("demo/sluice-demo-worker", *args, **kwargs)


@pytest.fixture
def held_port():
    """A port this test listens on: the checked process must neither bind nor connect to it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def accepted_nothing(sock) -> bool:
    try:
        sock.accept()[0].close()
        return False
    except BlockingIOError:
        return True


def test_gateway_valid_config_binds_and_connects_nothing(held_port):
    port = held_port.getsockname()[1]
    proc = gateway("--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{port}",
                   "--workers", f"127.0.0.1:{port}", "--layer", f"redis://127.0.0.1:{port}/0",
                   "--drain-delay", "5", "--drain-timeout", "25")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    assert lines[0] == (f"sluice-gateway: config ok: listen 127.0.0.1:{port}, admin "
                        f"127.0.0.1:{port}, workers 127.0.0.1:{port}, layer "
                        f"redis://127.0.0.1:{port}/0, threads auto, drain-delay 5 s, "
                        f"drain-timeout 25 s")
    assert accepted_nothing(held_port), "--check-config connected to a worker or Redis"


def test_gateway_discovery_name_is_not_resolved():
    # No such name resolves here; the check takes it as written.
    proc = gateway("--listen", "0.0.0.0:8000", "--workers",
                   "dns:sluice-worker.sluice.svc.cluster.local:8001", "--discovery-interval", "2")
    assert proc.returncode == 0, proc.stderr
    assert "workers dns:sluice-worker.sluice.svc.cluster.local:8001 every 2 s" in proc.stdout


@pytest.mark.parametrize("args, error", [
    (["--workers", "w:8001", "--admin", "pod-name:9100"],
     'sluice-gateway: config error: --admin: "pod-name" is not an IP address'),
    (["--workers", "w:8001", "--listen", "8000"], '--listen: expected HOST:PORT, got "8000"'),
    (["--workers", "dns:sluice_worker:8001"], '--workers: "sluice_worker" is neither'),
    (["--workers", "dns:worker"], "--workers dns:NAME:PORT: dns:worker is not NAME:PORT"),
    (["--workers", "w:8001", "--layer", "redis://:secret@redis:6379"], "--layer: expected"),
    (["--workers", "w:8001", "--no-such-flag"], "The following argument was not expected"),
    (["--workers", "w:8001", "--drain-timeout", "soon"], "--drain-timeout"),
    (["--listen", "0.0.0.0:8000"], "--workers is required"),
])
def test_gateway_config_errors_exit_2_naming_the_flag(args, error):
    proc = gateway(*args)
    assert proc.returncode == CONFIG_ERROR, (proc.returncode, proc.stdout, proc.stderr)
    assert error in proc.stderr, proc.stderr
    assert "config ok" not in proc.stdout


def test_worker_valid_config_binds_nothing_and_runs_no_hook(held_port):
    port = held_port.getsockname()[1]
    env = dict(os.environ, SLUICE_DEMO_FAIL_STARTUP="the startup hook ran")
    proc = worker("--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{port}",
                  "--capacity", "500", "--drain-timeout", "20", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"sluice-worker: config ok: listen 127.0.0.1:{port}, admin 127.0.0.1:{port}, "
        f"capacity 500, threads auto, drain-timeout 20 s, close-timeout 10 s"]
    assert "startup hook" not in proc.stderr
    assert accepted_nothing(held_port)


@pytest.mark.parametrize("args, error", [
    (["--listen", "bad_host:8001"], '--listen: "bad_host" is neither'),
    (["--admin", "localhost:9101"], '--admin: "localhost" is not an IP address'),
    (["--capacity", "0"], "--capacity"),
    (["--window-bytes", "0"], "--window-bytes"),
    (["--threads", "-1"], "--threads"),
])
def test_worker_config_errors_exit_2_naming_the_flag(args, error):
    proc = worker(*args)
    assert proc.returncode == CONFIG_ERROR, (proc.returncode, proc.stdout, proc.stderr)
    assert error in proc.stderr, proc.stderr


def test_help_still_exits_0():
    proc = gateway("--help")
    assert proc.returncode == 0
    assert "--check-config" in proc.stdout
