"""Gateway limits and the admin endpoints: each limit gives its status or close code, and
its counter on /metrics goes up (scraped before and after)."""

import asyncio
import http.client
import socket
import time

import pytest
import websockets

from e2e_helpers import (
    HOST,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    RawWebSocket,
    admin_get,
    check_retry_after,
    close_code,
    free_port,
    handshake_status,
    http_request,
    metric,
    read_http_response,
    recv,
    run,
    scrape_metrics,
    wait_closed_by_peer,
    wait_for_metric,
    ws_connect,
)

G = "sluice_gateway_"
REJECTED = G + 'rejections_total{reason="%s"}'
LIMIT = G + 'limit_closes_total{limit="%s"}'
UNAVAILABLE = G + "unavailable_total"


def _start(start_worker, start_gateway, *gateway_args, worker_args=(), **worker_kwargs):
    """A worker and a gateway, both with an admin port; `gateway_args` are extra flags."""
    worker = start_worker(admin=True, extra_args=[str(a) for a in worker_args], **worker_kwargs)
    gateway = start_gateway([worker], admin=True, extra_args=[str(a) for a in gateway_args])
    return worker, gateway


def _expect_increase(admin_port, before, name, by=1, timeout=5.0):
    """Wait until counter `name` is at least `by` above its value in `before`."""
    want = metric(before, name) + by
    return wait_for_metric(admin_port, name, lambda v: v >= want, timeout, f">= {want}")


def _raw_connect(port, timeout=5.0):
    return socket.create_connection((HOST, port), timeout=timeout)


# --- request size ----------------------------------------------------------------------------

def test_header_too_large_431(start_worker, start_gateway):
    _, gateway = _start(start_worker, start_gateway, "--max-header-bytes", 4096)
    before = scrape_metrics(gateway.admin_port)
    # well under the limit: served
    assert http_request(gateway.port, "GET", "/hello", headers=[("X-Pad", "a" * 2000)]).status == 200
    resp = http_request(gateway.port, "GET", "/hello", headers=[("X-Big", "a" * 8000)])
    assert resp.status == 431, f"HTTP {resp.status} {resp.body[:200]!r}"
    _expect_increase(gateway.admin_port, before, REJECTED % "header_too_large")


def test_content_length_too_large_413_at_once(start_worker, start_gateway):
    _, gateway = _start(start_worker, start_gateway, "--max-body-bytes", 100_000)
    before = scrape_metrics(gateway.admin_port)
    with _raw_connect(gateway.port) as sock:
        # The header only: the 413 must come without the body being sent.
        sock.sendall(
            f"POST /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100001\r\n\r\n".encode()
        )
        resp = read_http_response(sock, timeout=5)
    assert resp is not None, "connection closed without a response"
    assert resp.status == 413, f"HTTP {resp.status} {resp.body[:200]!r}"
    _expect_increase(gateway.admin_port, before, REJECTED % "body_too_large")
    # at the limit: accepted
    body = b"b" * 100_000
    resp = http_request(gateway.port, "POST", "/echo", body=body, timeout=10)
    assert (resp.status, resp.body == body) == (200, True)


def test_chunked_body_too_large_413(start_worker, start_gateway):
    """One chunk whose declared size crosses the limit: refused before any of it is read, so
    the application never started a response and the answer is 413."""
    _, gateway = _start(start_worker, start_gateway, "--max-body-bytes", 100_000)
    before = scrape_metrics(gateway.admin_port)
    with _raw_connect(gateway.port) as sock:
        sock.sendall(
            f"POST /echo HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n"
            f"{200_000:x}\r\n".encode()
            + b"c" * 1000
        )
        resp = read_http_response(sock, timeout=5)
    assert resp is not None, "connection closed without a response"
    assert resp.status == 413, f"HTTP {resp.status} {resp.body[:200]!r}"
    _expect_increase(gateway.admin_port, before, REJECTED % "body_too_large")


def test_chunked_body_crossing_limit_midway(start_worker, start_gateway):
    """Small chunks to /echo (its response starts at once) until the limit is crossed: the
    gateway answers 413 if it can, else (response already started) closes the connection;
    either way no more than the limit reaches the application, and the counter goes up."""
    limit = 100_000
    _, gateway = _start(start_worker, start_gateway, "--max-body-bytes", limit)
    before = scrape_metrics(gateway.admin_port)
    with _raw_connect(gateway.port, timeout=10) as sock:
        sock.sendall(
            f"POST /echo HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"%x\r\n" % 10_000 + b"d" * 10_000 + b"\r\n"
        sent_error = None
        for _ in range(20):  # 200 000 bytes
            try:
                sock.sendall(chunk)
            except OSError as exc:  # the gateway may already have closed
                sent_error = exc
                break
            time.sleep(0.02)
        _, received = wait_closed_by_peer(sock, timeout=10)
    head, _, body = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    if received:
        assert status_line.startswith(b"HTTP/1.1 "), f"not an HTTP response: {received[:200]!r}"
    status = int(status_line.split()[1]) if received else None
    assert status in (None, 200, 413), f"unexpected {status_line!r} (send error {sent_error!r})"
    if status == 200:
        # started echo: must be cut (not completed with the terminating chunk), and the
        # application saw at most `limit` bytes
        assert not body.endswith(b"0\r\n\r\n"), "echo completed although the body was too large"
        assert body.count(b"d") <= limit, f"{body.count(b'd')} bytes echoed, limit {limit}"
    _expect_increase(gateway.admin_port, before, REJECTED % "body_too_large")


# --- WebSocket messages ---------------------------------------------------------------------

def test_ws_message_too_big_1009(start_worker, start_gateway):
    _, gateway = _start(start_worker, start_gateway, "--max-ws-message", 1000)
    before = scrape_metrics(gateway.admin_port)

    async def main():
        async with ws_connect(gateway.port, "/ws/echo") as ws:
            await ws.send("a" * 1000)  # at the limit: fine
            assert await recv(ws) == "a" * 1000
            await ws.send("b" * 2000)
            with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                got = await recv(ws, timeout=5)
                pytest.fail(f"expected close 1009, received a message of {len(got)}")
            assert info.value.rcvd is not None, f"no close frame from the gateway ({info.value})"
            assert info.value.rcvd.code == 1009, info.value.rcvd

    run(main())
    _expect_increase(gateway.admin_port, before, LIMIT % "ws_message_too_big")


def test_ws_invalid_utf8_1007(start_worker, start_gateway):
    _, gateway = _start(start_worker, start_gateway)
    before = scrape_metrics(gateway.admin_port)
    ws = RawWebSocket.connect(gateway.port, "/ws/echo")
    try:
        ws.send_frame(OP_TEXT, "valid \u2713".encode())
        assert ws.recv_frame() == (True, OP_TEXT, "valid \u2713".encode())
        ws.send_frame(OP_TEXT, b"\xff\xfe")
        frames = []
        while True:
            try:
                frame = ws.recv_frame(timeout=5)
            except EOFError:
                pytest.fail(f"closed without a close frame; frames before: {frames}")
            frames.append(frame)
            if frame[1] == OP_CLOSE:
                break
        assert frames[:-1] == [], f"frames before the close: {frames[:-1]}"
        assert close_code(frames[-1][2]) == 1007, f"close frame {frames[-1]}"
    finally:
        ws.close()
    _expect_increase(gateway.admin_port, before, LIMIT % "ws_invalid_utf8")


# --- connections ----------------------------------------------------------------------------

def _keep_alive_get(conn, path="/hello"):
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp, resp.read()


def test_max_connections_503(start_worker, start_gateway):
    _, gateway = _start(start_worker, start_gateway, "--max-connections", 2)
    admin = gateway.admin_port
    # the readiness probe's connections are gone
    wait_for_metric(admin, G + "connections", lambda v: v == 0, what="0 open connections")
    before = scrape_metrics(admin)
    held = [http.client.HTTPConnection(HOST, gateway.port, timeout=5) for _ in range(2)]
    try:
        for conn in held:  # two keep-alive connections, each served once and kept open
            resp, body = _keep_alive_get(conn)
            assert (resp.status, body) == (200, b"Hello, world")
        wait_for_metric(admin, G + "connections", lambda v: v == 2, what="2 open connections")

        resp = http_request(gateway.port, "GET", "/hello")
        assert resp.status == 503, f"third connection: HTTP {resp.status}"
        check_retry_after(resp.headers)
        after = _expect_increase(admin, before, REJECTED % "max_connections")
        assert metric(after, UNAVAILABLE) >= metric(before, UNAVAILABLE) + 1

        # a WebSocket handshake past the limit too
        assert run(handshake_status(gateway.port, "/ws/echo")) == 503
        _expect_increase(admin, before, REJECTED % "max_connections", by=2)

        # the held connections still work; once one goes, a new connection is served
        resp, body = _keep_alive_get(held[0])
        assert resp.status == 200
        held.pop().close()
        wait_for_metric(admin, G + "connections", lambda v: v <= 1, what="<= 1 open connection")
        assert http_request(gateway.port, "GET", "/hello").status == 200
    finally:
        for conn in held:
            conn.close()


@pytest.mark.parametrize("style", ["silent", "trickle"])
def test_slowloris_header_timeout(start_worker, start_gateway, style):
    """A request header that does not complete within --header-timeout (1 s) gets the
    connection closed without a response, also when bytes keep trickling in."""
    _, gateway = _start(start_worker, start_gateway, "--header-timeout", 1)
    before = scrape_metrics(gateway.admin_port)
    with _raw_connect(gateway.port) as sock:
        sock.sendall(f"GET /hello HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        started = time.monotonic()
        if style == "trickle":
            sock.settimeout(0.25)
            received = b""
            for i in range(16):  # a header line every 0.25 s, for up to 4 s
                try:
                    sock.sendall(f"X-Slow-{i}: y\r\n".encode())
                    data = sock.recv(65536)
                    if not data:
                        break
                    received += data
                except socket.timeout:
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    break
            else:
                pytest.fail("the connection stayed open for 4 s of a trickled header")
        else:
            _, received = wait_closed_by_peer(sock, timeout=5)
        elapsed = time.monotonic() - started
    assert received == b"", f"expected no response, got {received[:200]!r}"
    assert 0.5 <= elapsed < 3.0, f"closed after {elapsed:.2f} s (header timeout 1 s)"
    _expect_increase(gateway.admin_port, before, LIMIT % "header_timeout")


def test_keep_alive_idle_timeout(start_worker, start_gateway):
    _, gateway = _start(start_worker, start_gateway, "--http-idle-timeout", 1)
    before = scrape_metrics(gateway.admin_port)
    with _raw_connect(gateway.port) as sock:
        sock.sendall(f"GET /hello HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        resp = read_http_response(sock)
        assert resp is not None and resp.status == 200
        assert resp.headers.get("Connection", "").lower() != "close"
        elapsed, received = wait_closed_by_peer(sock, timeout=5)
    assert received == b""
    assert 0.5 <= elapsed < 3.0, f"idle connection closed after {elapsed:.2f} s (timeout 1 s)"
    _expect_increase(gateway.admin_port, before, LIMIT % "idle_timeout")


def test_ws_idle_client_that_never_pongs_is_closed(start_worker, start_gateway):
    _, gateway = _start(start_worker, start_gateway, "--ws-idle-timeout", 2)
    before = scrape_metrics(gateway.admin_port)
    ws = RawWebSocket.connect(gateway.port, "/ws/echo")
    frames = []
    try:
        started = time.monotonic()
        while True:
            try:
                frame = ws.recv_frame(timeout=max(0.1, started + 6 - time.monotonic()))
            except (EOFError, ConnectionResetError):
                break
            except TimeoutError:
                pytest.fail(f"still open after 6 s (ws idle timeout 2 s); frames: {frames}")
            frames.append((round(time.monotonic() - started, 2), frame[1]))
            if frame[1] == OP_CLOSE:
                # a close frame is acceptable too; the TCP close must follow
                wait_closed_by_peer(ws.sock, timeout=3)
                break
        elapsed = time.monotonic() - started
    finally:
        ws.close()
    assert any(op == OP_PING for _, op in frames), f"no ping before the close; frames: {frames}"
    assert 1.5 <= elapsed < 4.5, f"closed after {elapsed:.2f} s (ws idle timeout 2 s); {frames}"
    _expect_increase(gateway.admin_port, before, LIMIT % "ws_ping_timeout")


def test_ws_idle_client_that_pongs_stays_open(start_worker, start_gateway):
    """The counterpart: a client answering pings (websockets does) outlives the timeout."""
    _, gateway = _start(start_worker, start_gateway, "--ws-idle-timeout", 2)

    async def main():
        async with ws_connect(gateway.port, "/ws/echo") as ws:
            await ws.send("before")
            assert await recv(ws) == "before"
            await asyncio.sleep(5)
            await ws.send("after")
            assert await recv(ws) == "after"

    run(main())


# --- admission ------------------------------------------------------------------------------

def test_no_worker_503_counted(start_gateway):
    gateway = start_gateway([free_port()], wait_ready=False, admin=True)
    before = scrape_metrics(gateway.admin_port)
    resp = http_request(gateway.port, "GET", "/hello")
    assert resp.status == 503
    check_retry_after(resp.headers)
    assert run(handshake_status(gateway.port, "/ws/echo")) == 503
    after = _expect_increase(gateway.admin_port, before, REJECTED % "no_worker", by=2)
    assert metric(after, UNAVAILABLE) >= metric(before, UNAVAILABLE) + 2
    assert metric(after, G + "workers_ready") == 0
    ready = admin_get(gateway.admin_port, "/readyz")
    assert ready.status == 503, f"/readyz with no worker: HTTP {ready.status}"


def test_worker_full_503_counted(start_worker, start_gateway):
    worker, gateway = _start(start_worker, start_gateway, capacity=1)
    admin = gateway.admin_port

    async def main():
        deadline = time.monotonic() + 5
        while True:  # the readiness probe's slot is released asynchronously
            try:
                ws = await ws_connect(gateway.port, "/ws/echo")
                break
            except websockets.exceptions.InvalidStatusCode as exc:
                assert exc.status_code == 503 and time.monotonic() < deadline
                await asyncio.sleep(0.05)
        try:
            await ws.send("x")
            assert await recv(ws) == "x"
            before = scrape_metrics(admin)
            resp = await asyncio.to_thread(http_request, gateway.port, "GET", "/hello")
            assert resp.status == 503, f"worker at capacity: HTTP {resp.status}"
            check_retry_after(resp.headers)
            assert await handshake_status(gateway.port, "/ws/echo") == 503
            return before
        finally:
            await ws.close()

    before = run(main())
    after = scrape_metrics(admin)
    rejected = sum(
        metric(after, REJECTED % r) - metric(before, REJECTED % r) for r in ("no_worker", "worker_full")
    )
    assert rejected >= 2, f"no_worker + worker_full rose by {rejected}, want >= 2"
    assert metric(after, UNAVAILABLE) >= metric(before, UNAVAILABLE) + 2
    wmetrics = scrape_metrics(worker.admin_port)
    assert metric(wmetrics, "sluice_worker_capacity") == 1


# --- admin endpoints --------------------------------------------------------------------------

def test_healthz_and_readyz(start_worker, start_gateway):
    worker, gateway = _start(start_worker, start_gateway)
    assert admin_get(gateway.admin_port, "/healthz").status == 200
    assert admin_get(worker.admin_port, "/healthz").status == 200
    assert admin_get(gateway.admin_port, "/readyz").status == 200
    assert metric(scrape_metrics(gateway.admin_port), G + "workers_ready") == 1
    assert metric(scrape_metrics(worker.admin_port), "sluice_worker_links") >= 1
    worker.kill()
    deadline = time.monotonic() + 10
    while True:
        status = admin_get(gateway.admin_port, "/readyz").status
        if status == 503:
            break
        assert status == 200, f"/readyz: HTTP {status}"
        assert time.monotonic() < deadline, "/readyz still 200 10 s after the worker was killed"
        time.sleep(0.05)
    assert admin_get(gateway.admin_port, "/healthz").status == 200  # alive, just not ready
    assert metric(scrape_metrics(gateway.admin_port), G + "workers_ready") == 0


def test_worker_and_gateway_metrics(start_worker, start_gateway):
    worker, gateway = _start(start_worker, start_gateway)
    gbefore = scrape_metrics(gateway.admin_port)
    wbefore = scrape_metrics(worker.admin_port)
    for _ in range(3):
        assert http_request(gateway.port, "GET", "/hello").status == 200
    resp = http_request(gateway.port, "GET", "/error")
    assert resp.status == 500

    async def ws_part():
        async with ws_connect(gateway.port, "/ws/echo") as ws:
            await ws.send("m")
            assert await recv(ws) == "m"
            samples = scrape_metrics(gateway.admin_port)
            assert metric(samples, G + "websockets") == 1
            wsamples = scrape_metrics(worker.admin_port)
            assert metric(wsamples, "sluice_worker_instances") == 1

    run(ws_part())

    wafter = _expect_increase(worker.admin_port, wbefore, "sluice_worker_app_errors_total")
    assert metric(wafter, "sluice_worker_instances_started_total") >= metric(
        wbefore, "sluice_worker_instances_started_total"
    ) + 5
    gafter = _expect_increase(gateway.admin_port, gbefore, G + "app_errors_total")
    assert metric(gafter, G + "http_requests_total") >= metric(gbefore, G + "http_requests_total") + 4
    assert metric(gafter, G + "websocket_upgrades_total") >= metric(
        gbefore, G + "websocket_upgrades_total"
    ) + 1
    assert metric(gafter, G + "connections_accepted_total") >= metric(
        gbefore, G + "connections_accepted_total"
    ) + 5
    # everything is released once the clients are gone
    wait_for_metric(gateway.admin_port, G + "websockets", lambda v: v == 0, what="0")
    wait_for_metric(gateway.admin_port, G + "connections", lambda v: v == 0, what="0")
    wait_for_metric(worker.admin_port, "sluice_worker_instances", lambda v: v == 0, what="0")


def test_consumer_ignoring_its_disconnect_is_cancelled_after_close_timeout(
    start_worker, start_gateway
):
    """An SSE consumer sleeping between events when its client leaves must not hold its
    capacity slot until it next wakes (here 10 minutes): it is cancelled after --close-timeout,
    counted, and not reported as an application error."""
    worker = start_worker(admin=True, extra_args=["--close-timeout", "1"])
    gateway = start_gateway([worker.port])
    with socket.create_connection((HOST, gateway.port), timeout=5) as sock:
        sock.sendall(b"GET /sse?interval_ms=600000 HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        deadline = time.monotonic() + 5
        while b"data: 1" not in received:
            assert time.monotonic() < deadline, f"no first event: {received!r}"
            chunk = sock.recv(4096)
            assert chunk, f"connection closed early: {received!r}"
            received += chunk
    # The client is gone; the consumer sleeps in its 10-minute timer.
    wait_for_metric(worker.admin_port, "sluice_worker_instances", lambda v: v == 0, timeout=4,
                    what="the instance ends within the close timeout")
    samples = scrape_metrics(worker.admin_port)
    assert samples["sluice_worker_close_timeouts_total"] == 1
    assert samples["sluice_worker_app_errors_total"] == 0
