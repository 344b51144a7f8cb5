"""Regression tests for failure paths: a worker lost while the gateway is blocked writing to
a client, a stall timer outliving its response, a finished response when its worker dies
mid-write, and clean exits on SIGTERM while links and connections are live."""

import os
import signal
import socket
import time

import pytest

from e2e_helpers import (
    HOST,
    OP_TEXT,
    RawWebSocket,
    admin_get,
    check_same,
    crash_markers,
    http_request,
    metric,
    read_http_response,
    read_to_eof,
    scrape_metrics,
    wait_closed_by_peer,
    wait_for_metric,
    wait_until,
)

MiB = 1024 * 1024
G = "sluice_gateway_"
STALLS_TO_CLIENT = G + 'credit_stalls_total{direction="to_client"}'
SLOW_CLOSES = G + "slow_client_closes_total"
WORKERS_READY = G + "workers_ready"


def _assert_serving(gateway):
    assert gateway.alive(), f"gateway exited (code {gateway.popen.returncode})"
    status = admin_get(gateway.admin_port, "/healthz", timeout=2).status
    assert status == 200, f"gateway /healthz: HTTP {status}"
    assert not crash_markers(gateway.stderr_path), crash_markers(gateway.stderr_path)


# --- 1. a WebSocket client keeps sending after its worker was lost -----------------------------

WS_CLOSE_TIMEOUT = 3  # --slow-client-timeout: also the deadline for writing a close frame


@pytest.mark.tsan
def test_ws_client_sends_after_worker_lost_during_blocked_write(start_worker, start_gateway):
    """The gateway is blocked writing a firehose to a client that reads nothing when the
    worker is SIGKILLed; then the client sends a frame. The gateway must survive (it used to
    read the frame into the released instance), and the client connection must end within
    the close deadline (the 1011 close frame cannot be written, so the socket is cut)."""
    worker = start_worker()
    gateway = start_gateway(
        [worker], admin=True, extra_args=["--slow-client-timeout", str(WS_CLOSE_TIMEOUT)]
    )
    ws = RawWebSocket.connect(gateway.port, "/ws/firehose?count=100000&size=65536", rcvbuf=4096)
    try:
        # The client-bound queue is full: the gateway's write is blocked on the socket.
        wait_for_metric(gateway.admin_port, STALLS_TO_CLIENT, lambda v: v >= 1, timeout=10,
                        what=">= 1 (client-bound write blocked)")
        worker.kill()
        wait_for_metric(gateway.admin_port, WORKERS_READY, lambda v: v == 0, timeout=10,
                        what="0 after SIGKILL of the worker")
        # The close must come from the lost worker, not from the slow-client timer (which
        # would not exercise the path): the timer had WS_CLOSE_TIMEOUT s, this took less.
        assert metric(scrape_metrics(gateway.admin_port), SLOW_CLOSES) == 0, (
            "slow-client close fired before the worker was lost; the test did not exercise "
            "the lost-link path (machine too slow?)"
        )
        ws.send_frame(OP_TEXT, b"hello after the worker died")
        elapsed, _ = wait_closed_by_peer(ws.sock, timeout=WS_CLOSE_TIMEOUT + 4)
    finally:
        ws.close()
    _assert_serving(gateway)
    print(f"client connection ended {elapsed:.2f} s after its last frame")
    wait_for_metric(gateway.admin_port, G + "websockets", lambda v: v == 0, timeout=5,
                    what="0 (the session ended)")
    assert metric(scrape_metrics(gateway.admin_port), G + "worker_lost_total") >= 1
    _assert_serving(gateway)


# --- 2. a stall timer armed during a response must not close the next request -----------------

def test_keep_alive_survives_response_that_used_all_credit(start_worker, start_gateway):
    """--window-bytes 4: the 12-byte /hello response leaves the worker without credit, which
    arms the slow-client timer (1 s). The response ends; the timer must not outlive it: a
    second request on the same connection 2.5 s later is answered."""
    worker = start_worker()
    gateway = start_gateway(
        [worker], admin=True, extra_args=["--window-bytes", "4", "--slow-client-timeout", "1"]
    )
    before = scrape_metrics(gateway.admin_port)
    request = f"GET /hello HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    with socket.create_connection((HOST, gateway.port), timeout=5) as sock:
        sock.sendall(request)
        first = read_http_response(sock, timeout=5)
        assert first is not None and first.status == 200, f"first request: {first}"
        assert first.body == b"Hello, world"
        # the response did use up the worker's credit (the timer was armed)
        wait_for_metric(gateway.admin_port, STALLS_TO_CLIENT,
                        lambda v: v > metric(before, STALLS_TO_CLIENT), timeout=5,
                        what="raised by the first response")
        time.sleep(2.5)
        sock.sendall(request)
        second = read_http_response(sock, timeout=5)
        assert second is not None, "keep-alive connection closed before the second response"
        assert second.status == 200, f"second request: HTTP {second.status}"
        assert second.body == b"Hello, world"
    assert metric(scrape_metrics(gateway.admin_port), SLOW_CLOSES) == 0


# --- 3. a finished response is written whole when its worker dies ------------------------------

ECHO_BYTES = 12 * MiB


@pytest.mark.tsan
def test_finished_response_written_whole_after_worker_killed(start_worker, start_gateway):
    """The worker echoes 12 MiB into the gateway's (large) client-bound queue and finishes;
    the client has read nothing yet. The worker is SIGKILLed while the gateway still has
    most of the response to write. The client then reads everything: the whole response,
    byte for byte (it used to be cut when the link was lost)."""
    worker = start_worker(admin=True)
    gateway = start_gateway(
        [worker],
        admin=True,
        extra_args=["--window-bytes", str(32 * MiB), "--window-events", "1000000"],
    )
    started = "sluice_worker_instances_started_total"
    started_before = metric(scrape_metrics(worker.admin_port), started)
    payload = os.urandom(ECHO_BYTES)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
        sock.settimeout(30)
        sock.connect((HOST, gateway.port))
        # HTTP/1.0: the response is delimited by the connection's close.
        sock.sendall(b"POST /echo HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % ECHO_BYTES + payload)

        def worker_done():
            samples = scrape_metrics(worker.admin_port)
            return (
                metric(samples, started) > started_before
                and metric(samples, "sluice_worker_instances") == 0
            )

        wait_until(worker_done, timeout=30, what="the worker finished the echo")
        # Its Close follows the last body on the link: once the gateway has it, the gateway
        # holds the whole response.
        wait_for_metric(gateway.admin_port, G + "instances", lambda v: v == 0, timeout=30,
                        what="the gateway received the whole response")
        queued = metric(scrape_metrics(gateway.admin_port), G + "queued_bytes")
        assert queued > 0, "the gateway has nothing left to write; the test exercises nothing"
        worker.kill()
        # The link is down; the session no longer depends on it (its instance had ended).
        wait_for_metric(gateway.admin_port, WORKERS_READY, lambda v: v == 0, timeout=10,
                        what="0 after SIGKILL of the worker")
        data, error = read_to_eof(sock, timeout=60)
    finally:
        sock.close()
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no complete response head: {data[:300]!r}"
    status_line = head.split(b"\r\n", 1)[0]
    assert status_line.split(b" ")[1:2] == [b"200"], f"status line {status_line!r}"
    assert b"chunked" not in head.lower(), f"chunked response to HTTP/1.0: {head!r}"
    assert error is None, f"connection reset after {len(body)} of {ECHO_BYTES} body bytes"
    check_same(body, payload, "echoed body")
    print(f"{queued / MiB:.1f} MiB still queued in the gateway when the worker was killed")
    _assert_serving(gateway)


# --- 4. clean exits on SIGTERM while links and connections are live ----------------------------

CYCLES = 5


class _LiveTraffic:
    """A few requests, then an open WebSocket (one echo done) and an open SSE stream, so the
    link carries live instances when a process is stopped."""

    def __init__(self, port):
        for _ in range(3):
            assert http_request(port, "GET", "/hello", timeout=5).status == 200
        self.ws = RawWebSocket.connect(port, "/ws/echo")
        self.sse = None
        try:
            self.ws.send_frame(OP_TEXT, b"ping")
            fin, opcode, text = self.ws.recv_frame(timeout=5)
            assert (fin, opcode, text) == (True, OP_TEXT, b"ping")
            self.sse = socket.create_connection((HOST, port), timeout=5)
            self.sse.sendall(f"GET /sse?interval_ms=20 HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            received = b""
            while b"data: 2" not in received:  # the stream is running
                part = self.sse.recv(4096)
                assert part, f"SSE stream closed early: {received!r}"
                received += part
            assert received.startswith(b"HTTP/1.1 200"), received[:100]
        except BaseException:
            self.close()
            raise

    def close(self):
        self.ws.close()
        if self.sse is not None:
            self.sse.close()


def _stop_cleanly(proc, what):
    code = proc.terminate_and_wait(signal.SIGTERM, timeout=5)
    assert code is not None, f"{what}: {proc.name} did not exit within 5 s of SIGTERM"
    assert code == 0, f"{what}: {proc.name} exit code {code}"
    found = crash_markers(proc.stderr_path)
    assert not found, f"{what}: {proc.name} stderr contains {found}"


# The SSE stream never ends by itself: each process waits --drain-timeout for it, then cuts it.
DRAIN = ["--drain-timeout", "1"]


@pytest.mark.tsan
def test_gateway_sigterm_with_live_links(start_worker, start_gateway):
    """SIGTERM to a gateway linked to a worker, with an open WebSocket and SSE stream:
    exit code 0 within 5 s, nothing on stderr from a sanitizer or std::terminate. The
    gateway used to tear down the link while gRPC could still call into it."""
    started = time.monotonic()
    for cycle in range(1, CYCLES + 1):
        worker = start_worker(extra_args=DRAIN)
        gateway = start_gateway([worker], extra_args=DRAIN)
        traffic = _LiveTraffic(gateway.port)
        try:
            _stop_cleanly(gateway, f"cycle {cycle}")
        finally:
            traffic.close()
        _stop_cleanly(worker, f"cycle {cycle}, after its gateway")
    print(f"{CYCLES} cycles in {time.monotonic() - started:.1f} s")


@pytest.mark.tsan
def test_worker_sigterm_with_linked_gateway(start_worker, start_gateway):
    """SIGTERM to a worker whose gateway is linked and serving an open WebSocket and SSE
    stream: exit code 0 within 5 s, stderr clean; the gateway survives and then stops
    cleanly too."""
    started = time.monotonic()
    for cycle in range(1, CYCLES + 1):
        worker = start_worker(extra_args=DRAIN)
        gateway = start_gateway([worker], admin=True, extra_args=DRAIN)
        traffic = _LiveTraffic(gateway.port)
        try:
            _stop_cleanly(worker, f"cycle {cycle}")
            wait_for_metric(gateway.admin_port, WORKERS_READY, lambda v: v == 0, timeout=5,
                            what="0 after the worker stopped")
            _assert_serving(gateway)
        finally:
            traffic.close()
        _stop_cleanly(gateway, f"cycle {cycle}, after its worker")
    print(f"{CYCLES} cycles in {time.monotonic() - started:.1f} s")
