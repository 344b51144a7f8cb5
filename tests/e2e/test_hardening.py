"""Hardening: slow readers of tiny messages, half-duplex clients, early answers that reach
the client instead of a reset, the request body deadline, responses that break their own
Content-Length, WebSocket close codes and protocol violations, a frozen worker (heartbeats),
graceful drains on SIGTERM, two coroutines of one consumer sending at once, and the bound of
a client-bound queue.

Every bound below is derived from a documented timeout or window (docs/backpressure.md,
docs/architecture.md, the --help of both processes) plus a stated margin for a loaded
2-core machine."""

import http.client
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from e2e_helpers import (
    ALLOCATOR_MARGIN,
    admin_get,
    DEFAULT_WINDOW_BYTES,
    KiB,
    MiB,
    HOST,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    RawWebSocket,
    RssSampler,
    check_retry_after,
    check_same,
    close_code,
    crash_markers,
    decode_chunked,
    duplex_request,
    free_port,
    http_request,
    metric,
    read_http_response,
    read_to_eof,
    scrape_metrics,
    wait_for_metric,
    wait_until,
    ws_frame,
)

G = "sluice_gateway_"
REJECTED = G + 'rejections_total{reason="%s"}'
LIMIT = G + 'limit_closes_total{limit="%s"}'
QUEUED = G + "queued_bytes"
APP_ERRORS = G + "app_errors_total"
WORKERS_READY = G + "workers_ready"
STALLS_TO_CLIENT = G + 'credit_stalls_total{direction="to_client"}'
INSTANCES = "sluice_worker_instances"

# Added to every documented timeout before a test calls it late: scheduling on a loaded
# 2-core machine, plus the gateway's 100 ms deadline sweep (gateway/shard.h, kSweep).
MARGIN = 3.0


def _start(start_worker, start_gateway, *gateway_args, worker_args=()):
    """A worker and a gateway, both with an admin port; `gateway_args` are extra flags."""
    worker = start_worker(admin=True, extra_args=[str(a) for a in worker_args])
    gateway = start_gateway([worker], admin=True, extra_args=[str(a) for a in gateway_args])
    return worker, gateway


def _expect_increase(admin_port, before, name, by=1, timeout=5.0):
    """Wait until counter `name` is at least `by` above its value in `before`."""
    want = metric(before, name) + by
    return wait_for_metric(admin_port, name, lambda v: v >= want, timeout, f">= {want}")


def _assert_healthy(proc):
    assert proc.alive(), f"{proc.name} exited (code {proc.popen.returncode})"
    found = crash_markers(proc.stderr_path)
    assert not found, f"{proc.name} stderr contains {found}"


def _parse_whole_response(data: bytes):
    """(status, headers, body) of exactly one Content-Length response in `data`; fails if
    the response is cut or followed by anything."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, f"no complete response head in {len(data)} bytes: {data[:300]!r}"
    lines = head.decode("latin-1").split("\r\n")
    version, status, *_ = lines[0].split(" ", 2)
    assert version.startswith("HTTP/1."), f"not an HTTP response: {lines[0]!r}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert "content-length" in headers, f"no Content-Length in {head!r}"
    length = int(headers["content-length"])
    assert len(rest) == length, (
        f"body of {len(rest)} bytes after the head, Content-Length {length}: {rest[:200]!r}"
    )
    return int(status), headers, rest


def _exchange(port, head: bytes, body_pieces=(), *, pace=0.0, shut_wr=True, timeout=15.0,
              before_close=None):
    """A client that sends a request head and then every body piece (on a thread, pausing
    `pace` seconds between pieces), then half-closes if `shut_wr` — while the main thread
    reads everything the gateway sends until it closes the connection (EOF). Once the
    request is sent, `before_close()` runs (if given) while the socket is still open.
    Returns (received bytes, read error or None, send error or None, seconds to EOF)."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    send_error = []

    def sender():
        try:
            sock.sendall(head)
            for piece in body_pieces:
                sock.sendall(piece)
                if pace:
                    time.sleep(pace)  # pacing the client, not synchronisation
            if shut_wr:
                sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            send_error.append(exc)

    thread = threading.Thread(target=sender, daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        data, error = read_to_eof(sock, timeout)
        elapsed = time.monotonic() - started
        thread.join(timeout)
        assert not thread.is_alive(), f"the request was still being sent after {timeout} s"
        if before_close is not None:
            before_close()
    finally:
        sock.close()
    return data, error, (send_error[0] if send_error else None), elapsed


def _pieces(data: bytes, size=64 * KiB):
    return [data[i:i + size] for i in range(0, len(data), size)]


def _frames_until_close(ws, timeout):
    """Frames up to and including the first close frame: (frames before it, close payload).
    Fails if the connection ends without a close frame or nothing comes within `timeout`."""
    deadline = time.monotonic() + timeout
    before = []
    while True:
        try:
            frame = ws.recv_frame(timeout=max(0.05, deadline - time.monotonic()))
        except EOFError:
            pytest.fail(f"connection ended without a close frame; frames before: {before[:10]}")
        except TimeoutError:
            pytest.fail(f"no close frame within {timeout} s; frames before: {before[:10]}")
        if frame[1] == OP_CLOSE:
            return before, frame[2]
        before.append(frame)


def _assert_orderly_eof(sock, timeout):
    """The peer closes the connection (FIN, not a reset) within `timeout`, sending nothing."""
    data, error = read_to_eof(sock, timeout)
    assert error is None, f"connection reset instead of closed ({error!r})"
    assert data == b"", f"bytes after the close frame: {data[:100]!r}"


def _sse_events(payload: bytes):
    """The complete SSE events in a (possibly cut) stream: [b'data: 1', ...]."""
    return payload.split(b"\n\n")[:-1]


def _check_sse_sequence(events, what):
    for i, event in enumerate(events, start=1):
        if event != b"data: %d" % i:
            previous = events[i - 2] if i > 1 else None
            raise AssertionError(f"{what}: event {i} is {event[:40]!r} (previous: {previous!r})")


# --- 1. slow readers of tiny messages ------------------------------------------------------

SSE_CLIENTS = 4
SLOW_READ_SECONDS = 5.0
SSE_WINDOW_EVENTS = 64
SSE_EVENT_MAX = len(b"ffff\r\ndata: 99999999\n\n\r\n")  # one event as written, chunk framing incl.


class SlowSseReader(threading.Thread):
    """GET /sse?interval_ms=1 on a socket with SO_RCVBUF 4096, reading 2 KiB every 50 ms for
    SLOW_READ_SECONDS, then leaving. Keeps everything it read."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.data = b""
        self.error = None

    def run(self):
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
                sock.settimeout(5)
                sock.connect((HOST, self.port))
                sock.sendall(f"GET /sse?interval_ms=1 HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                parts = []
                end = time.monotonic() + SLOW_READ_SECONDS
                while time.monotonic() < end:
                    part = sock.recv(2 * KiB)  # bounded by the 5 s socket timeout
                    if not part:
                        raise AssertionError(f"EOF after {sum(map(len, parts))} bytes")
                    parts.append(part)
                    time.sleep(0.05)  # pacing: a slow reader
                self.data = b"".join(parts)
            finally:
                sock.close()
        except BaseException as exc:
            self.error = exc


def test_slow_sse_readers_of_tiny_events(start_worker, start_gateway):
    """Four clients with a 4 KiB receive buffer read an endless 1 ms SSE stream at 2 KiB per
    50 ms for 5 s each (--window-events 64). Tiny events and a slow reader used to make the
    gateway use a queued event after freeing it; now every event arrives as `data: N`, in
    order, with no gap, the gateway stays up with a clean stderr, its RSS stays within the
    four windows + allocator margin, and nothing stays queued once the clients left."""
    # A small kernel send buffer: otherwise the kernel (whose buffer grows to MiBs) would take
    # the whole stream and the gateway's own queue would never hold anything.
    worker, gateway = _start(start_worker, start_gateway, "--window-events", SSE_WINDOW_EVENTS,
                             "--socket-send-buffer", 4096)
    for _ in range(3):  # warm-up before the RSS baseline
        assert http_request(gateway.port, "GET", "/hello").status == 200
    before = scrape_metrics(gateway.admin_port)
    readers = [SlowSseReader(gateway.port) for _ in range(SSE_CLIENTS)]
    max_queued = 0.0
    with RssSampler({"gateway": gateway.pid}) as rss:
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + SLOW_READ_SECONDS + 10
        for reader in readers:
            while reader.is_alive() and time.monotonic() < deadline:
                max_queued = max(max_queued, metric(scrape_metrics(gateway.admin_port), QUEUED))
                reader.join(0.05)
    assert not any(r.is_alive() for r in readers), "a reader is still running"
    stalls = metric(scrape_metrics(gateway.admin_port), STALLS_TO_CLIENT) - metric(
        before, STALLS_TO_CLIENT)
    counts = []
    for n, reader in enumerate(readers):
        assert reader.error is None, f"reader {n}: {reader.error!r}"
        head, sep, body = reader.data.partition(b"\r\n\r\n")
        assert sep and head.startswith(b"HTTP/1.1 200"), f"reader {n}: {reader.data[:200]!r}"
        assert b"transfer-encoding: chunked" in head.lower(), head
        payload, complete = decode_chunked(body)
        assert not complete, f"reader {n}: the endless stream ended"
        events = _sse_events(payload)
        _check_sse_sequence(events, f"reader {n}")
        counts.append(len(events))
    print(f"events per reader {counts}; peak queued {max_queued:.0f} B; to-client stalls "
          f"{stalls:.0f}; {rss.report()}")
    assert min(counts) >= 100, f"a reader received too few events to test anything: {counts}"
    assert max_queued > 0 and stalls >= 1, (
        f"the gateway's queue was never used (peak {max_queued} B, {stalls} stalls): the test "
        f"exercises nothing")
    # per connection: one window (64 events, and never more than the 1 MiB byte window)
    # plus one event
    per_connection = min(DEFAULT_WINDOW_BYTES, SSE_WINDOW_EVENTS * SSE_EVENT_MAX) + SSE_EVENT_MAX
    bound = SSE_CLIENTS * per_connection + ALLOCATOR_MARGIN
    rss.assert_growth_below("gateway", bound)
    wait_for_metric(gateway.admin_port, QUEUED, lambda v: v == 0, timeout=5, what="0 queued")
    wait_for_metric(worker.admin_port, INSTANCES, lambda v: v == 0, timeout=5, what="0 instances")
    _assert_healthy(gateway)
    assert http_request(gateway.port, "GET", "/hello").status == 200


FIREHOSE_COUNT = 20_000
FIREHOSE_SIZE = 8


def _firehose_message(i) -> bytes:
    return f"{i} ".ljust(FIREHOSE_SIZE, "x").encode()


def test_slow_websocket_reader_of_tiny_messages(start_worker, start_gateway):
    """A raw WebSocket client with a 4 KiB receive buffer reads 20 000 × 8-byte firehose
    messages at 1 KiB per 50 ms for 5 s (--window-events 256, --slow-client-timeout 30, so
    it is never closed as slow), then reads the rest fast: every message arrives once, in
    order, then close 1000 "done" and an orderly EOF. Gateway RSS stays within one window +
    one message + allocator margin; nothing stays queued."""
    worker, gateway = _start(start_worker, start_gateway, "--window-events", 256,
                             "--slow-client-timeout", 30, "--socket-send-buffer", 4096)
    for _ in range(3):
        assert http_request(gateway.port, "GET", "/hello").status == 200
    before = scrape_metrics(gateway.admin_port)
    with RssSampler({"gateway": gateway.pid}) as rss:
        ws = RawWebSocket.connect(
            gateway.port, f"/ws/firehose?count={FIREHOSE_COUNT}&size={FIREHOSE_SIZE}",
            rcvbuf=4096)
        try:
            end = time.monotonic() + SLOW_READ_SECONDS
            queued = []
            while time.monotonic() < end:
                ws._fill(time.monotonic() + 5, max_bytes=KiB)
                queued.append(metric(scrape_metrics(gateway.admin_port), QUEUED))
                time.sleep(0.05)  # pacing: a slow reader
            slow_bytes = len(ws.buffer)
            texts = []
            deadline = time.monotonic() + 20
            close_payload = None
            while close_payload is None:
                for fin, opcode, payload in ws.recv_frames(timeout=deadline - time.monotonic()):
                    assert close_payload is None, "a frame after the close frame"
                    if opcode == OP_CLOSE:
                        close_payload = payload
                    else:
                        assert (fin, opcode) == (True, OP_TEXT), (fin, opcode, payload[:20])
                        texts.append(payload)
            ws.sock.sendall(ws_frame(OP_CLOSE, close_payload[:2]))
            _assert_orderly_eof(ws.sock, timeout=5)
        finally:
            ws.close()
    stalls = metric(scrape_metrics(gateway.admin_port), STALLS_TO_CLIENT) - metric(
        before, STALLS_TO_CLIENT)
    print(f"{slow_bytes} B read slowly (gateway queue non-empty in {sum(q > 0 for q in queued)}"
          f" of {len(queued)} samples, peak {max(queued):.0f} B), then {len(texts)} messages in "
          f"all; to-client stalls {stalls:.0f}; {rss.report()}")
    busy = sum(q > 0 for q in queued)
    assert busy >= len(queued) // 2, (
        f"the gateway's queue held messages in only {busy} of {len(queued)} samples: the test "
        f"exercises too little")
    for i, text in enumerate(texts):
        if text != _firehose_message(i):
            raise AssertionError(f"message {i} is {text!r} (gap or reorder)")
    assert len(texts) == FIREHOSE_COUNT, f"{len(texts)} messages, want {FIREHOSE_COUNT}"
    assert close_code(close_payload) == 1000 and close_payload[2:] == b"done", close_payload
    bound = DEFAULT_WINDOW_BYTES + FIREHOSE_SIZE + ALLOCATOR_MARGIN
    rss.assert_growth_below("gateway", bound)
    wait_for_metric(gateway.admin_port, QUEUED, lambda v: v == 0, timeout=5, what="0 queued")
    wait_for_metric(worker.admin_port, INSTANCES, lambda v: v == 0, timeout=5, what="0 instances")
    _assert_healthy(gateway)


# --- 2. half-duplex clients ----------------------------------------------------------------

@pytest.mark.tsan
def test_half_duplex_clients_echo_8mib(start_worker, start_gateway):
    """Clients that send the whole body before reading (urllib, http.client's single
    request()) get 8 MiB echoed by /echo, which reads the whole body (spooled past 1 MiB)
    before answering with a Content-Length: 200 and identical bytes. /echo/stream, the
    full-duplex echo, streams a few MiB back to a client that reads while it sends, chunked
    and with a Content-Length."""
    _, gateway = _start(start_worker, start_gateway)
    payload = os.urandom(8 * MiB)
    url = f"http://{HOST}:{gateway.port}/echo"
    request = urllib.request.Request(
        url, data=payload, method="POST", headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200
        assert resp.headers.get("Content-Length") == str(len(payload)), resp.headers.items()
        check_same(resp.read(), payload, "urllib echo")

    conn = http.client.HTTPConnection(HOST, gateway.port, timeout=30)
    try:
        conn.request("POST", "/echo", body=payload)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200
        check_same(body, payload, "http.client echo")
    finally:
        conn.close()

    streamed = os.urandom(3 * MiB + 123)
    resp = duplex_request(gateway.port, "POST", "/echo/stream", _pieces(streamed, 100_000),
                          chunked=True)
    assert resp.status == 200
    check_same(resp.body, streamed, "/echo/stream chunked")
    resp = duplex_request(gateway.port, "POST", "/echo/stream", _pieces(streamed, 100_000),
                          chunked=False, content_length=len(streamed))
    assert resp.status == 200
    check_same(resp.body, streamed, "/echo/stream Content-Length")


# --- 3. early answers reach the client ------------------------------------------------------

BODY_LIMIT = 1 * MiB
LINGER = 2  # --linger-timeout in the early-answer tests


def test_413_reaches_urllib_sending_8mib(start_worker, start_gateway):
    """urllib POSTs 8 MiB to /echo past --max-body-bytes 1 MiB; it sends the whole body
    before reading. The gateway answers 413 at once (Content-Length says so) and reads and
    drops the rest, so urllib gets HTTPError 413 with its body instead of a reset."""
    _, gateway = _start(start_worker, start_gateway, "--max-body-bytes", BODY_LIMIT)
    before = scrape_metrics(gateway.admin_port)
    request = urllib.request.Request(
        f"http://{HOST}:{gateway.port}/echo", data=os.urandom(8 * MiB), method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30).close()
    assert info.value.code == 413, info.value
    body = info.value.read()
    info.value.close()
    assert b"Content Too Large" in body, body
    _expect_increase(gateway.admin_port, before, REJECTED % "body_too_large")


def test_413_then_whole_body_gets_response_and_orderly_eof(start_worker, start_gateway):
    """A raw client sends `Content-Length: 8388608` and then all 8 MiB without reading, and
    never half-closes. The gateway answers 413 at once and half-closes: the client reads the
    whole 413 and an orderly EOF — no ECONNRESET before the response is read — and every
    body byte is still accepted (the gateway reads and drops it). Since the client keeps its
    side open, the gateway gives up lingering after --linger-timeout (2 s), counted."""
    _, gateway = _start(start_worker, start_gateway, "--max-body-bytes", BODY_LIMIT,
                        "--linger-timeout", LINGER)
    before = scrape_metrics(gateway.admin_port)
    size = 8 * MiB
    head = f"POST /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {size}\r\n\r\n".encode()

    def linger_ends():  # the client's side is still open: only the linger timeout ends it
        _expect_increase(gateway.admin_port, before, LIMIT % "linger", timeout=LINGER + MARGIN)

    data, error, send_error, _ = _exchange(
        gateway.port, head, _pieces(os.urandom(size)), shut_wr=False, timeout=LINGER + MARGIN,
        before_close=linger_ends)
    assert error is None, f"reset ({error!r}) after {len(data)} bytes: {data[:200]!r}"
    assert send_error is None, f"sending the body failed: {send_error!r}"
    status, headers, body = _parse_whole_response(data)
    assert status == 413 and body == b"Content Too Large\n", (status, body)
    assert headers.get("connection") == "close", headers
    after = scrape_metrics(gateway.admin_port)
    assert metric(after, REJECTED % "body_too_large") == metric(
        before, REJECTED % "body_too_large") + 1


def test_early_401_before_the_body_is_read(start_worker, start_gateway):
    """POST /early (answers 401 without reading the body) with a 4 MiB body: a raw client
    that sends it all and then half-closes gets the whole 401 and an orderly EOF; urllib,
    which sends everything before reading, gets HTTPError 401 with that body."""
    _, gateway = _start(start_worker, start_gateway)
    size = 4 * MiB
    body = os.urandom(size)
    head = f"POST /early HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {size}\r\n\r\n".encode()
    data, error, send_error, _ = _exchange(gateway.port, head, _pieces(body))
    assert error is None, f"reset ({error!r}) after {len(data)} bytes: {data[:200]!r}"
    assert send_error is None, f"sending the body failed: {send_error!r}"
    status, _, answer = _parse_whole_response(data)
    assert (status, answer) == (401, b"answered before the body was read\n")

    request = urllib.request.Request(
        f"http://{HOST}:{gateway.port}/early", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30).close()
    assert info.value.code == 401, info.value
    assert info.value.read() == b"answered before the body was read\n"
    info.value.close()
    _assert_healthy(gateway)


def test_431_while_the_client_keeps_sending(start_worker, start_gateway):
    """A 20 KiB header (default --max-header-bytes 16384) sent 1 KiB at a time, and the
    client goes on sending after the limit was crossed: it gets the whole 431 and an
    orderly EOF, not a reset."""
    _, gateway = _start(start_worker, start_gateway)
    before = scrape_metrics(gateway.admin_port)
    header = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (20 * KiB) + b"\r\n\r\n"
    data, error, send_error, _ = _exchange(
        gateway.port, header[:KiB], _pieces(header[KiB:], KiB), pace=0.01)
    assert error is None, f"reset ({error!r}) after {len(data)} bytes: {data[:200]!r}"
    assert send_error is None, f"sending the header failed: {send_error!r}"
    status, headers, _ = _parse_whole_response(data)
    assert status == 431, data[:200]
    assert headers.get("connection") == "close", headers
    _expect_increase(gateway.admin_port, before, REJECTED % "header_too_large")


def test_431_for_many_fields_sent_line_by_line(start_worker, start_gateway):
    """The header limit counts every field, however the header is cut into reads: 2 000
    fields of 50 bytes (100 KB, over the 16 KiB default), each write ending just past a line
    break, get 431. (Beast 1.81 counts only what it has not parsed yet, so this header once
    passed whole to the worker.)"""
    _, gateway = _start(start_worker, start_gateway)
    before = scrape_metrics(gateway.admin_port)
    header = (b"GET /scope HTTP/1.1\r\nHost: x\r\n"
              + b"".join(b"X-Field-%04d: %s\r\n" % (i, b"v" * 34) for i in range(2000))
              + b"\r\n")
    cuts = [i + 3 for i in range(len(header) - 3) if header[i:i + 2] == b"\r\n"]
    pieces = [header[a:b] for a, b in zip([0] + cuts, cuts + [len(header)])]
    data, error, _, _ = _exchange(gateway.port, pieces[0], pieces[1:], pace=0.001)
    assert error is None, f"reset ({error!r}) after {len(data)} bytes: {data[:200]!r}"
    status, _, _ = _parse_whole_response(data)
    assert status == 431, data[:300]
    _expect_increase(gateway.admin_port, before, REJECTED % "header_too_large")


def test_503_no_worker_with_4mib_body(start_gateway):
    """No worker (the gateway points at a port nobody listens on): a POST with a 4 MiB body
    gets 503 + Retry-After, whole, and an orderly EOF — the unread body does not turn the
    answer into a reset."""
    gateway = start_gateway([free_port()], wait_ready=False, admin=True)
    before = scrape_metrics(gateway.admin_port)
    size = 4 * MiB
    head = f"POST /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {size}\r\n\r\n".encode()
    data, error, send_error, _ = _exchange(gateway.port, head, _pieces(os.urandom(size)))
    assert error is None, f"reset ({error!r}) after {len(data)} bytes: {data[:200]!r}"
    assert send_error is None, f"sending the body failed: {send_error!r}"
    status, headers, _ = _parse_whole_response(data)
    assert status == 503, data[:200]
    check_retry_after({"Retry-After": headers.get("retry-after")})
    _expect_increase(gateway.admin_port, before, REJECTED % "no_worker")


# --- 4. request body deadline --------------------------------------------------------------

BODY_TIMEOUT = 2  # --body-timeout


def test_stalled_body_gets_408_and_frees_the_instance(start_worker, start_gateway):
    """--body-timeout 2: a POST /echo declaring 100 000 bytes sends 10 and then nothing.
    Within 2 s + margin (not before ~2 s) it gets 408 with Connection: close; the limit is
    counted; the worker's instance (which was waiting for the body) ends, freeing its slot."""
    worker, gateway = _start(start_worker, start_gateway, "--body-timeout", BODY_TIMEOUT)
    before = scrape_metrics(gateway.admin_port)
    with socket.create_connection((HOST, gateway.port), timeout=5) as sock:
        sock.sendall(f"POST /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100000\r\n\r\n"
                     .encode() + b"0123456789")
        started = time.monotonic()
        # the body reached the application, which now waits for the rest
        wait_for_metric(worker.admin_port, INSTANCES, lambda v: v == 1, timeout=5,
                        what="1 instance (the echo waiting for its body)")
        resp = read_http_response(sock, timeout=BODY_TIMEOUT + MARGIN)
        elapsed = time.monotonic() - started
    assert resp is not None, "connection closed without a response"
    assert resp.status == 408, f"HTTP {resp.status} {resp.body[:100]!r}"
    assert resp.headers.get("Connection", "").lower() == "close", list(resp.headers.items())
    assert BODY_TIMEOUT - 0.5 <= elapsed < BODY_TIMEOUT + MARGIN, (
        f"408 after {elapsed:.2f} s (body timeout {BODY_TIMEOUT} s)")
    after = _expect_increase(gateway.admin_port, before, LIMIT % "body_timeout")
    assert metric(after, LIMIT % "body_timeout") == metric(before, LIMIT % "body_timeout") + 1
    wait_for_metric(worker.admin_port, INSTANCES, lambda v: v == 0, timeout=5,
                    what="0 instances (the slot freed)")


def test_trickling_body_is_not_cut(start_worker, start_gateway):
    """--body-timeout 2 bounds a body that makes no progress, not a slow one: a byte every
    0.5 s for 5 s (2.5 timeouts in all) is read whole and echoed, with no 408."""
    _, gateway = _start(start_worker, start_gateway, "--body-timeout", BODY_TIMEOUT)
    before = scrape_metrics(gateway.admin_port)
    body = b"trickling!"
    with socket.create_connection((HOST, gateway.port), timeout=5) as sock:
        sock.sendall(f"POST /echo HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(body)}\r\n\r\n"
                     .encode())
        for i in range(len(body)):
            sock.sendall(body[i:i + 1])
            if i + 1 < len(body):
                # pacing: 0.5 s between bytes, during which no answer may come
                sock.settimeout(0.5)
                try:
                    early = sock.recv(4096)
                    pytest.fail(f"answered while the body was still coming: {early[:200]!r}")
                except socket.timeout:
                    pass
        resp = read_http_response(sock, timeout=5)
    assert resp is not None and resp.status == 200, resp
    assert resp.body == body
    assert metric(scrape_metrics(gateway.admin_port), LIMIT % "body_timeout") == metric(
        before, LIMIT % "body_timeout")


# --- 5. application Content-Length mismatch --------------------------------------------------

@pytest.mark.parametrize("sent", [5, 50])
def test_bad_content_length_whole_body_gives_500(start_worker, start_gateway, sent):
    """The application declares Content-Length 10 and sends its whole body (one event) of a
    different size: nothing went out yet, so the client gets a whole, parseable 500, the
    application error is counted, and the connection is still usable (keep-alive) or
    closed cleanly."""
    _, gateway = _start(start_worker, start_gateway)
    before = scrape_metrics(gateway.admin_port)
    with socket.create_connection((HOST, gateway.port), timeout=5) as sock:
        sock.sendall(f"GET /bad-length?declared=10&sent={sent} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
                     .encode())
        resp = read_http_response(sock, timeout=5)
        assert resp is not None, "connection closed without a response"
        assert resp.status == 500, f"HTTP {resp.status} {resp.body[:100]!r}"
        assert resp.body == b"Internal Server Error\n", resp.body
        if resp.headers.get("Connection", "").lower() == "close":
            _assert_orderly_eof(sock, timeout=5)
            reused = False
        else:  # keep-alive: the same connection serves the next request
            sock.sendall(f"GET /hello HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            again = read_http_response(sock, timeout=5)
            assert again is not None, "keep-alive connection closed after the 500"
            assert (again.status, again.body) == (200, b"Hello, world")
            reused = True
    print(f"connection after the 500: {'reused' if reused else 'closed'}")
    _expect_increase(gateway.admin_port, before, APP_ERRORS)


def test_bad_content_length_after_the_head_cuts_the_connection(start_worker, start_gateway):
    """Content-Length 10, then 20 bytes in two events: the head (and the first 10 bytes) may
    be out already, so the only honest end is to cut the connection: the client sees at
    most 10 body bytes, then the connection ends (no hang); counted as an application
    error."""
    _, gateway = _start(start_worker, start_gateway)
    before = scrape_metrics(gateway.admin_port)
    with socket.create_connection((HOST, gateway.port), timeout=5) as sock:
        sock.sendall(f"GET /bad-length?declared=10&sent=20&pieces=2 HTTP/1.1\r\nHost: {HOST}"
                     f"\r\n\r\n".encode())
        data, error = read_to_eof(sock, timeout=5)
    print(f"received {data!r}, end: {error!r}")
    if data:
        head, sep, body = data.partition(b"\r\n\r\n")
        assert sep, f"a cut head: {data!r}"
        assert head.startswith(b"HTTP/1.1 200"), data[:200]
        assert b"content-length: 10" in head.lower(), head
        assert len(body) <= 10, f"{len(body)} body bytes after Content-Length 10: {body!r}"
    _expect_increase(gateway.admin_port, before, APP_ERRORS)
    _assert_healthy(gateway)


# --- 6. WebSocket close codes and protocol violations ----------------------------------------

INVALID_CLOSE_CODES = [5000, 65535, 999, 1005, 1006, 1016, 2999]
VALID_CLOSE_CODES = [1000, 3000, 4999]


def _close_exchange(port, send):
    """Open /ws/echo raw, check it echoes, `send(ws)` something, and return the payload of
    the gateway's close frame (frames before it fail the test); then the gateway must close
    the TCP connection in order."""
    ws = RawWebSocket.connect(port, "/ws/echo")
    try:
        ws.send_frame(OP_TEXT, b"hi")
        assert ws.recv_frame() == (True, OP_TEXT, b"hi")
        send(ws)
        before, payload = _frames_until_close(ws, timeout=5)
        assert before == [], f"frames before the close frame: {before}"
        _assert_orderly_eof(ws.sock, timeout=5)
        return payload
    finally:
        ws.close()


def test_ws_invalid_close_codes_get_1002(start_worker, start_gateway):
    """A client close frame with a code that may not be sent (5000, 65535, 999, 1005, 1006,
    1016, 2999) or a 1-byte payload is a protocol error: the gateway answers close 1002 and
    closes the connection; each is counted as ws_protocol_error."""
    _, gateway = _start(start_worker, start_gateway)
    before = scrape_metrics(gateway.admin_port)
    cases = [(code, code.to_bytes(2, "big")) for code in INVALID_CLOSE_CODES]
    cases.append(("1-byte payload", b"\x03"))
    for what, payload in cases:
        got = _close_exchange(gateway.port, lambda ws, p=payload: ws.send_frame(OP_CLOSE, p))
        assert close_code(got) == 1002, f"client close {what}: gateway close frame {got!r}"
    want = metric(before, LIMIT % "ws_protocol_error") + len(cases)
    after = wait_for_metric(gateway.admin_port, LIMIT % "ws_protocol_error",
                            lambda v: v >= want, what=f">= {want}")
    assert metric(after, LIMIT % "ws_protocol_error") == want, "counted more than once"


def test_ws_valid_close_codes_are_echoed(start_worker, start_gateway):
    """Close codes a client may send (1000, 3000, 4999, with a reason) are echoed back,
    and are not counted as protocol errors."""
    _, gateway = _start(start_worker, start_gateway)
    before = scrape_metrics(gateway.admin_port)
    for code in VALID_CLOSE_CODES:
        payload = code.to_bytes(2, "big") + b"bye"
        got = _close_exchange(gateway.port, lambda ws, p=payload: ws.send_frame(OP_CLOSE, p))
        assert close_code(got) == code, f"client close {code}: gateway close frame {got!r}"
    assert metric(scrape_metrics(gateway.admin_port), LIMIT % "ws_protocol_error") == metric(
        before, LIMIT % "ws_protocol_error")


def test_ws_protocol_violations_get_1002(start_worker, start_gateway):
    """An unmasked client frame, a reserved opcode (0x3) and a fragmented ping each fail the
    connection with close 1002 (RFC 6455 5.1, 5.2, 5.5), counted as ws_protocol_error."""
    _, gateway = _start(start_worker, start_gateway)
    before = scrape_metrics(gateway.admin_port)
    violations = {
        "unmasked frame": ws_frame(OP_TEXT, b"no mask", mask=False),
        "reserved opcode 0x3": ws_frame(0x3, b"x"),
        "fragmented ping": ws_frame(OP_PING, b"p", fin=False),
    }
    for what, frame in violations.items():
        got = _close_exchange(gateway.port, lambda ws, f=frame: ws.sock.sendall(f))
        assert close_code(got) == 1002, f"{what}: gateway close frame {got!r}"
    want = metric(before, LIMIT % "ws_protocol_error") + len(violations)
    after = wait_for_metric(gateway.admin_port, LIMIT % "ws_protocol_error",
                            lambda v: v >= want, what=f">= {want}")
    assert metric(after, LIMIT % "ws_protocol_error") == want, "counted more than once"


# --- 7. a frozen worker -------------------------------------------------------------------------

HEARTBEAT = 1.0  # heartbeat interval of both processes (1 s)
SILENT_INTERVALS = 4  # the link is given up after 4 silent intervals
GIVE_UP = HEARTBEAT * SILENT_INTERVALS
FREEZE_BOUND = GIVE_UP + 4.0  # + margin: the last read before the freeze, ticks, load


@pytest.mark.tsan
def test_frozen_worker_is_given_up_by_heartbeat(start_worker, start_gateway):
    """SIGSTOP the worker (its sockets stay open, it just goes silent) while a WebSocket is
    open, an SSE response is streaming and a GET /hello is sent right after the freeze.
    Within 4 heartbeats + margin the gateway gives the link up: the WebSocket cannot move (no
    other worker) and gets close 1012, the stream is cut (no terminating chunk), the GET that
    went to the frozen worker cannot be retried elsewhere and gets 502; workers_ready drops to 0 and a new GET /hello gets 503 + Retry-After at once."""
    worker = start_worker()
    gateway = start_gateway([worker], admin=True)
    ws = RawWebSocket.connect(gateway.port, "/ws/echo")
    sse = socket.create_connection((HOST, gateway.port), timeout=5)
    frozen = False
    try:
        ws.send_frame(OP_TEXT, b"before")
        assert ws.recv_frame() == (True, OP_TEXT, b"before")
        sse.sendall(f"GET /sse?count=1000&interval_ms=100 HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
                    .encode())
        received = b""
        while b"data: 2\n\n" not in received:  # the response has started
            part = sse.recv(4096)
            assert part, f"SSE closed early: {received!r}"
            received += part

        os.kill(worker.pid, signal.SIGSTOP)
        frozen = True
        frozen_at = time.monotonic()
        get_result = {}

        def get_hello():
            try:
                get_result["resp"] = http_request(gateway.port, "GET", "/hello",
                                                  timeout=FREEZE_BOUND + MARGIN)
            except Exception as exc:
                get_result["error"] = exc
            get_result["at"] = time.monotonic() - frozen_at

        getter = threading.Thread(target=get_hello, daemon=True)
        getter.start()

        _, payload = _frames_until_close(ws, timeout=FREEZE_BOUND)
        ws_closed_at = time.monotonic() - frozen_at
        assert close_code(payload) == 1012, f"close frame {payload!r}"

        left = max(0.1, frozen_at + FREEZE_BOUND - time.monotonic())
        rest, error = read_to_eof(sse, timeout=left)
        sse_cut_at = time.monotonic() - frozen_at
        _, complete = decode_chunked((received + rest).partition(b"\r\n\r\n")[2])
        assert not complete, "the stream ended normally although its worker is frozen"

        getter.join(FREEZE_BOUND + MARGIN)
        assert not getter.is_alive(), "GET /hello issued during the freeze got no answer"
        assert "error" not in get_result, f"GET during the freeze: {get_result['error']!r}"
        assert get_result["resp"].status == 502, (
            f"GET during the freeze: HTTP {get_result['resp'].status} {get_result['resp'].body!r}")
        print(f"after the freeze: ws close {ws_closed_at:.2f} s, sse cut {sse_cut_at:.2f} s "
              f"({error!r}), GET 502 {get_result['at']:.2f} s")
        assert ws_closed_at < FREEZE_BOUND and get_result["at"] < FREEZE_BOUND

        wait_for_metric(gateway.admin_port, WORKERS_READY, lambda v: v == 0, timeout=1,
                        what="0 once the link was given up")
        started = time.monotonic()
        resp = http_request(gateway.port, "GET", "/hello", timeout=5)
        took = time.monotonic() - started
        assert resp.status == 503, f"HTTP {resp.status} {resp.body!r}"
        check_retry_after(resp.headers)
        assert took < 2.0, f"503 took {took:.2f} s (no worker: answered at once)"
        _assert_healthy(gateway)
    finally:
        if frozen:
            os.kill(worker.pid, signal.SIGCONT)
        ws.close()
        sse.close()


# --- 8. graceful drains on SIGTERM -------------------------------------------------------------

DRAIN_TIMEOUT = 10
SSE_EVENTS = 20
SSE_INTERVAL = 0.1
SSE_DURATION = (SSE_EVENTS - 1) * SSE_INTERVAL  # 1.9 s
LINK_STOP = 2.0  # each process gives gRPC up to 2 s to finish its links (architecture.md)


def _start_finite_sse(port):
    """GET /sse?count=20&interval_ms=100 on a raw socket, read until its first event."""
    sock = socket.create_connection((HOST, port), timeout=5)
    sock.sendall(f"GET /sse?count={SSE_EVENTS}&interval_ms={int(SSE_INTERVAL * 1000)} HTTP/1.1"
                 f"\r\nHost: {HOST}\r\n\r\n".encode())
    received = b""
    while b"data: 1\n\n" not in received:
        part = sock.recv(4096)
        assert part, f"SSE closed early: {received!r}"
        received += part
    return sock, received


def _check_whole_sse(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1.1 200"), data[:200]
    payload, complete = decode_chunked(body)
    events = _sse_events(payload)
    _check_sse_sequence(events, "SSE")
    assert len(events) == SSE_EVENTS, f"{len(events)} events of {SSE_EVENTS}: {payload[-60:]!r}"
    assert complete, f"no terminating chunk: {body[-40:]!r}"
    assert body.endswith(b"0\r\n\r\n"), f"bytes after the terminating chunk: {body[-40:]!r}"


def _open_ws(port):
    ws = RawWebSocket.connect(port, "/ws/echo")
    ws.send_frame(OP_TEXT, b"open")
    assert ws.recv_frame() == (True, OP_TEXT, b"open")
    return ws


def _new_connection_outcome(port):
    """What a new client gets from a draining gateway: 'refused', 'closed' (no response) or
    the HTTP status."""
    try:
        sock = socket.create_connection((HOST, port), timeout=3)
    except ConnectionRefusedError:
        return "refused"
    with sock:
        try:
            sock.sendall(f"GET /hello HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            resp = read_http_response(sock, timeout=5)
        except (ConnectionResetError, BrokenPipeError):
            return "closed"
    return "closed" if resp is None else resp.status


GATEWAY_DRAIN = 4  # > SSE_DURATION: the stream finishes inside the drain


@pytest.mark.tsan
def test_gateway_sigterm_drains(start_worker, start_gateway):
    """SIGTERM to a gateway (--drain-timeout 4) while a 2 s SSE response streams and a
    WebSocket is open: /readyz fails at once, the response completes whole (20 events and
    the terminating chunk, then the connection closes), a new connection is refused (or at
    least not answered 502), the WebSocket stays open until the drain timeout and then gets
    close 1001, and the gateway exits 0 right after (close handshake + link shutdown +
    margin)."""
    worker = start_worker()
    gateway = start_gateway([worker], admin=True,
                            extra_args=["--drain-timeout", str(GATEWAY_DRAIN)])
    ws = _open_ws(gateway.port)
    sse, received = _start_finite_sse(gateway.port)
    try:
        gateway.expected_exit = True
        gateway.popen.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        wait_until(lambda: admin_get(gateway.admin_port, "/readyz").status == 503, MARGIN,
                   "/readyz failing")

        rest, error = read_to_eof(sse, timeout=SSE_DURATION + MARGIN)
        sse.close()  # a client closes on EOF (else the gateway lingers --linger-timeout on it)
        assert error is None, f"the stream was reset ({error!r})"
        _check_whole_sse(received + rest)

        outcome = _new_connection_outcome(gateway.port)
        assert outcome != 502, "a new connection during the drain got 502"

        _, payload = _frames_until_close(ws, timeout=GATEWAY_DRAIN + MARGIN)
        closed_after = time.monotonic() - signalled
        assert close_code(payload) == 1001, f"close frame {payload!r}"
        # Timers do not fire early: the WebSocket was kept the whole drain timeout.
        assert closed_after >= GATEWAY_DRAIN - 0.05, f"1001 after {closed_after:.2f} s"
        ws.sock.sendall(ws_frame(OP_CLOSE, payload[:2]))  # a polite client answers and leaves
        ws.close()

        bound = GATEWAY_DRAIN + LINK_STOP + MARGIN
        try:
            code = gateway.popen.wait(timeout=max(0.1, signalled + bound - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"gateway still running {bound:.1f} s after SIGTERM")
        took = time.monotonic() - signalled
    finally:
        ws.close()
        sse.close()
    print(f"new connection during the drain: {outcome}; gateway exited after {took:.2f} s")
    assert code == 0, f"gateway exit code {code}"
    assert not crash_markers(gateway.stderr_path), crash_markers(gateway.stderr_path)


def test_gateway_drain_delay_keeps_serving_with_readiness_failed(start_worker, start_gateway):
    """SIGTERM with --drain-delay 3: /readyz fails at once while new connections are still
    accepted and answered for the delay (a load balancer takes the gateway out meanwhile);
    then the gateway drains and exits 0."""
    delay = 3
    worker = start_worker()
    gateway = start_gateway([worker], admin=True, extra_args=["--drain-delay", str(delay)])
    assert admin_get(gateway.admin_port, "/readyz").status == 200
    gateway.expected_exit = True
    gateway.popen.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    wait_until(lambda: admin_get(gateway.admin_port, "/readyz").status == 503, MARGIN,
               "/readyz failing")
    resp = http_request(gateway.port, "GET", "/hello")  # a new connection, in the delay
    assert time.monotonic() - signalled < delay, "the check came too late to prove anything"
    assert resp.status == 200 and resp.body == b"Hello, world"
    code = gateway.popen.wait(timeout=delay + LINK_STOP + MARGIN)
    assert code == 0
    assert time.monotonic() - signalled >= delay - 0.05, "the gateway did not wait its delay"


@pytest.mark.tsan
def test_worker_sigterm_drains(start_worker, start_gateway):
    """SIGTERM to a worker (--drain-timeout 10) while a 2 s SSE response streams through
    its gateway and a WebSocket is open: the WebSocket is handed back at once and, with no
    other worker to move to, closed by the gateway with 1012; the response completes whole, and the worker exits 0 once it is done (the rest of the
    stream + link shutdown + instance return + margin); the gateway stays up."""
    worker = start_worker(extra_args=["--drain-timeout", str(DRAIN_TIMEOUT)])
    gateway = start_gateway([worker], admin=True)
    ws = _open_ws(gateway.port)
    sse, received = _start_finite_sse(gateway.port)
    try:
        worker.expected_exit = True
        worker.popen.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        _, payload = _frames_until_close(ws, timeout=MARGIN)
        assert close_code(payload) == 1012, f"close frame {payload!r}"
        ws.sock.sendall(ws_frame(OP_CLOSE, payload[:2]))
        _assert_orderly_eof(ws.sock, timeout=5)

        # keep-alive: the gateway is not draining, so read up to the terminating chunk
        deadline = time.monotonic() + SSE_DURATION + MARGIN
        data = received
        while not decode_chunked(data.partition(b"\r\n\r\n")[2])[1]:
            sse.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                part = sse.recv(65536)
            except socket.timeout:
                pytest.fail(f"the stream did not complete: {data[-80:]!r}")
            assert part, f"the stream was cut: {data[-80:]!r}"
            data += part
        _check_whole_sse(data)

        bound = SSE_DURATION + 2 * LINK_STOP + MARGIN
        try:
            code = worker.popen.wait(timeout=max(0.1, signalled + bound - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker still running {bound:.1f} s after SIGTERM")
        took = time.monotonic() - signalled
    finally:
        ws.close()
        sse.close()
    print(f"worker exited after {took:.2f} s")
    assert code == 0, f"worker exit code {code}"
    assert not crash_markers(worker.stderr_path), crash_markers(worker.stderr_path)
    wait_for_metric(gateway.admin_port, WORKERS_READY, lambda v: v == 0, timeout=5,
                    what="0 after the worker stopped")
    _assert_healthy(gateway)


# --- 9. two coroutines of one consumer sending at once ------------------------------------------

TWINS = 2000


@pytest.mark.tsan
def test_twin_senders_share_a_tiny_window(start_worker, start_gateway):
    """/ws/twins: two coroutines of one consumer send 2000 messages each at the same time,
    through a gateway window of 4 events, to a client that reads slowly for 2 s first (so
    both wait for credit together). Every message arrives exactly once, each sequence in
    order, then close 1000 "done", within a bounded time."""
    _, gateway = _start(start_worker, start_gateway, "--window-events", 4)
    ws = RawWebSocket.connect(gateway.port, f"/ws/twins?count={TWINS}", rcvbuf=4096)
    started = time.monotonic()
    try:
        end = started + 2.0
        while time.monotonic() < end:
            ws._fill(time.monotonic() + 5, max_bytes=256)
            time.sleep(0.05)  # pacing: a slow reader
        next_of = {b"a": 0, b"b": 0}
        close_payload = None
        deadline = time.monotonic() + 20  # 4000 messages at ≥ 200/s even on a loaded machine
        while close_payload is None:
            for fin, opcode, payload in ws.recv_frames(timeout=deadline - time.monotonic()):
                assert close_payload is None, "a frame after the close frame"
                if opcode == OP_CLOSE:
                    close_payload = payload
                    continue
                assert (fin, opcode) == (True, OP_TEXT), (fin, opcode, payload[:20])
                name, _, number = payload.partition(b" ")
                assert name in next_of, f"unexpected message {payload!r}"
                assert int(number) == next_of[name], (
                    f"{payload!r} after {name.decode()} {next_of[name] - 1}")
                next_of[name] += 1
        ws.sock.sendall(ws_frame(OP_CLOSE, close_payload[:2]))
        _assert_orderly_eof(ws.sock, timeout=5)
    finally:
        ws.close()
    print(f"twins done in {time.monotonic() - started:.2f} s")
    assert next_of == {b"a": TWINS, b"b": TWINS}, next_of
    assert close_code(close_payload) == 1000 and close_payload[2:] == b"done", close_payload
    _assert_healthy(gateway)


# --- 10. the client-bound queue is bounded by the window ------------------------------------------

QUEUE_WINDOW_BYTES = 64 * KiB
QUEUE_MESSAGE = 16 * KiB  # 8 events of it would be 128 KiB: the byte window binds


def test_client_bound_queue_stays_within_window(start_worker, start_gateway):
    """/ws/firehose of 16 KiB messages with --window-events 8 --window-bytes 65536 to a
    client that reads nothing for 3 s: the gateway's queued bytes, sampled all along, never
    exceed the window + one message (docs/backpressure.md), though the queue does fill;
    and drop to 0 once the client leaves."""
    worker, gateway = _start(start_worker, start_gateway, "--window-events", 8,
                             "--window-bytes", QUEUE_WINDOW_BYTES)
    ws = RawWebSocket.connect(
        gateway.port, f"/ws/firehose?count=1000000&size={QUEUE_MESSAGE}", rcvbuf=4096)
    samples = []
    try:
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            samples.append(metric(scrape_metrics(gateway.admin_port), QUEUED))
            time.sleep(0.02)  # sampling interval
    finally:
        ws.close()
    peak = max(samples)
    print(f"{len(samples)} samples of queued bytes, peak {peak:.0f}")
    assert peak <= QUEUE_WINDOW_BYTES + QUEUE_MESSAGE, f"queued {peak:.0f} B: over the window"
    # the client read nothing for 3 s: its queue filled to at least half a window (credit
    # comes back in half windows), else this test exercised nothing
    assert peak >= QUEUE_WINDOW_BYTES / 2, f"peak {peak:.0f} B: the queue never filled"
    wait_for_metric(gateway.admin_port, QUEUED, lambda v: v == 0, timeout=5, what="0 queued")
    wait_for_metric(worker.admin_port, INSTANCES, lambda v: v == 0, timeout=5, what="0 instances")
    _assert_healthy(gateway)
