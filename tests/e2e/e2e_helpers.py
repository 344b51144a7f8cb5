"""Client-side helpers for the sluice end-to-end tests (stdlib + websockets only).

Every network operation here has a timeout, so a broken server fails a test instead of
hanging it.
"""

import asyncio
import base64
import email.utils
import hashlib
import http.client
import io
import os
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import websockets

HOST = "127.0.0.1"

KiB = 1024
MiB = 1024 * 1024

# docs/backpressure.md: each end's default window per connection and direction is 16 events /
# 1 MiB (--window-events / --window-bytes); a receiver holds at most one window + one event.
DEFAULT_WINDOW_BYTES = 1 * MiB
# RSS is not a byte count of queued data: glibc keeps freed memory in per-thread arenas (the
# gateway's shards, the worker's loops, gRPC's threads), gRPC keeps a serialized copy of the
# Frame it is writing or reading, and pages touched once stay resident. 8 MiB covers that at
# the sizes these tests use (measured growth is 0.2-3 MiB), while the unbounded queues these
# tests guard against would grow by the whole stream.
ALLOCATOR_MARGIN = 8 * MiB


# RSS bounds hold for the normal build. In a sanitizer build the sanitizer's allocator owns
# the RSS (quarantine of freed memory, shadow memory): the tests still run there for the
# sanitizer's sake, but their RSS bounds do not bind. conftest.py sets this per build.
RSS_BOUNDS_BIND = True


def window_rss_bound(connections, message_bytes, window_bytes=DEFAULT_WINDOW_BYTES):
    """The most a process may grow while it carries `connections` busy connections in both
    directions: per direction one window + one message in its queues, and as much again in
    gRPC's serialized copy of the link's Frames; plus the allocator margin."""
    return connections * 2 * 2 * (window_bytes + message_bytes) + ALLOCATOR_MARGIN


@dataclass
class Response:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes


def http_request(port, method, path, body=None, headers=(), timeout=5.0) -> Response:
    """One request on a fresh connection (closed afterwards). `headers`: (name, value) pairs,
    sent in order, duplicates allowed."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.reason, resp.msg, data)
    finally:
        conn.close()


def duplex_request(port, method, path, chunks, *, chunked, content_length=None, timeout=30.0):
    """Send a request body while reading the response at the same time.

    http.client only reads the response after the whole body was sent; for a streaming echo
    of several MiB, a server with bounded buffers (correct behaviour) would then stall. So
    the request is written by a thread on a raw socket and the response is parsed by
    http.client.HTTPResponse on the same socket, concurrently.
    """
    sock = socket.create_connection((HOST, port), timeout=timeout)
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
    else:
        head += f"Content-Length: {content_length}\r\n"
    head += "\r\n"
    send_error = []

    def sender():
        try:
            sock.sendall(head.encode())
            for chunk in chunks:
                if not chunk:
                    continue
                if chunked:
                    sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                else:
                    sock.sendall(chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except Exception as exc:  # reported by the caller
            send_error.append(exc)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    try:
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        parts = []
        while True:
            part = resp.read(256 * 1024)
            if not part:
                break
            parts.append(part)
        thread.join(timeout)
        if thread.is_alive():
            raise AssertionError(f"request body still not sent after {timeout} s")
        if send_error and resp.status < 400:
            raise AssertionError(f"sending the request body failed: {send_error[0]!r}")
        return Response(resp.status, resp.reason, resp.msg, b"".join(parts))
    finally:
        sock.close()


def check_same(got, want, what="payload"):
    """Equality for large payloads, with a short message (no multi-MiB diff)."""
    if type(got) is not type(want):
        raise AssertionError(f"{what}: got {type(got).__name__}, want {type(want).__name__}")
    if got == want:
        return
    n = min(len(got), len(want))
    first = next((i for i in range(n) if got[i] != want[i]), n)
    raise AssertionError(
        f"{what}: got {len(got)} units, want {len(want)}; first difference at offset {first}: "
        f"got {got[first:first + 16]!r}, want {want[first:first + 16]!r}"
    )


def check_retry_after(headers):
    value = headers.get("Retry-After")
    assert value is not None, f"503 without Retry-After; headers: {list(headers.items())}"
    value = value.strip()
    if re.fullmatch(r"\d+", value):
        return
    assert email.utils.parsedate_to_datetime(value) is not None, f"bad Retry-After {value!r}"


def free_port() -> int:
    """A port on which (most likely) nothing listens: bind port 0, note it, close."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- WebSocket --------------------------------------------------------------------------

def ws_uri(port, path) -> str:
    return f"ws://{HOST}:{port}{path}"


def ws_connect(port, path, **kwargs):
    options = dict(open_timeout=5, close_timeout=5, max_size=None, ping_interval=None)
    options.update(kwargs)
    return websockets.connect(ws_uri(port, path), **options)


async def recv(ws, timeout=5.0):
    return await asyncio.wait_for(ws.recv(), timeout)


async def handshake_status(port, path, **kwargs):
    """101 if the handshake succeeded (the connection is closed again), else the HTTP status."""
    try:
        ws = await ws_connect(port, path, **kwargs)
    except websockets.exceptions.InvalidStatusCode as exc:
        return exc.status_code
    await ws.close()
    return 101


def run(coro, timeout=60.0):
    """Run a coroutine from a sync test, bounded."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


# --- admin endpoint, metrics, RSS -----------------------------------------------------------

def admin_get(admin_port, path, timeout=5.0) -> Response:
    """GET on a process's admin port (/metrics, /healthz, /readyz)."""
    return http_request(admin_port, "GET", path, timeout=timeout)


def parse_metrics(text: str) -> dict:
    """Prometheus text format → {sample name incl. labels: float}, e.g.
    'sluice_gateway_rejections_total{reason="body_too_large"}' → 0.0."""
    samples = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        # the value follows the name (and its {labels}); an optional timestamp may follow it
        close = line.rfind("}")
        head_end = close + 1 if close != -1 else line.index(" ")
        name = line[:head_end].strip()
        value = line[head_end:].split()[0]
        samples[name] = float(value)
    return samples


def scrape_metrics(admin_port, timeout=5.0) -> dict:
    """GET /metrics on an admin port, parsed by parse_metrics."""
    resp = admin_get(admin_port, "/metrics", timeout=timeout)
    assert resp.status == 200, f"GET /metrics: HTTP {resp.status} {resp.body[:200]!r}"
    return parse_metrics(resp.body.decode("utf-8"))


def metric(samples: dict, name: str) -> float:
    """One sample; a missing one fails with the names that do exist."""
    if name not in samples:
        family = name.split("{")[0]
        near = sorted(k for k in samples if k.startswith(family))
        raise AssertionError(f"metric {name} not exported (same family: {near})")
    return samples[name]


def wait_for_metric(admin_port, name, predicate, timeout=5.0, what=""):
    """Poll /metrics until predicate(value) holds (metrics are updated asynchronously);
    return the last samples. Fails with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape_metrics(admin_port)
        value = metric(samples, name)
        if predicate(value):
            return samples
        if time.monotonic() >= deadline:
            raise AssertionError(f"{name} = {value} after {timeout} s; wanted {what or predicate}")
        time.sleep(0.05)


def wait_until(predicate, timeout, what, interval=0.05):
    """Poll predicate() until it returns a true value (returned); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(interval)


# Text a process's stderr must never contain: sanitizer reports (builds with
# SLUICE_SANITIZE=ON) and std::terminate ("terminate called after throwing ...").
CRASH_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error", "terminate")


def crash_markers(path) -> list:
    """The CRASH_MARKERS found in a log file (e.g. Proc.stderr_path)."""
    text = Path(path).read_text("utf-8", "replace")
    return [marker for marker in CRASH_MARKERS if marker in text]


def rss_bytes(pid) -> int:
    """Resident set size (VmRSS) of a process, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                parts = line.split()
                assert parts[2] == "kB", line
                return int(parts[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


class RssSampler:
    """Samples VmRSS of some processes every `interval` seconds on a thread; keeps the peak.

    with RssSampler({"gateway": gw.pid, "worker": wk.pid}) as rss:
        ...
    rss.baseline / rss.peak: {name: bytes}; rss.growth(name) = peak - baseline.
    The baseline is taken when the sampler starts (call it after a warm-up)."""

    def __init__(self, pids: dict, interval=0.1):
        self.pids = dict(pids)
        self.interval = interval
        self.baseline = {name: rss_bytes(pid) for name, pid in self.pids.items()}
        self.peak = dict(self.baseline)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        for name, pid in self.pids.items():
            try:
                self.peak[name] = max(self.peak[name], rss_bytes(pid))
            except (OSError, AssertionError):
                pass  # the process ended; teardown reports that
        self.samples += 1

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()

    def assert_growth_below(self, name, bound):
        """Asserts `name` grew by less than `bound` bytes (where RSS bounds bind)."""
        if RSS_BOUNDS_BIND:
            assert self.growth(name) < bound, f"{name} RSS grew over {bound} B: {self.report()}"

    def growth(self, name) -> int:
        return self.peak[name] - self.baseline[name]

    def report(self) -> str:
        MiB = 1024 * 1024
        return ", ".join(
            f"{name}: {self.baseline[name] / MiB:.1f} → peak {self.peak[name] / MiB:.1f} MiB"
            for name in self.pids
        ) + f" ({self.samples} samples)"


# --- raw sockets ------------------------------------------------------------------------------

def wait_closed_by_peer(sock, timeout):
    """Read until the peer closes (EOF or reset). Returns (seconds it took, bytes received
    meanwhile). Fails if the socket is still open after `timeout` seconds."""
    started = time.monotonic()
    deadline = started + timeout
    received = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"connection still open after {timeout} s (received meanwhile: {received[:200]!r})"
            )
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started, received
        if not data:
            return time.monotonic() - started, received
        received += data


def read_to_eof(sock, timeout):
    """Read until the peer closes the connection. Returns (data, error): error is None for
    an orderly EOF, else the ConnectionResetError/BrokenPipeError that ended the reading.
    Fails if the connection is still open after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    parts = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"connection still open after {timeout} s "
                f"({sum(map(len, parts))} bytes received meanwhile)"
            )
        sock.settimeout(remaining)
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError) as exc:
            return b"".join(parts), exc
        if not data:
            return b"".join(parts), None
        parts.append(data)


def read_http_response(sock, timeout=5.0):
    """Read one HTTP response (head + Content-Length body) from a raw socket. Returns a
    Response, or None when the peer closed the connection before sending a response."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            part = sock.recv(65536)
            if not part:
                if data:
                    raise AssertionError(f"connection closed mid-response: {data[:200]!r}")
                return None
            data += part
    except ConnectionResetError:
        if data:
            raise AssertionError(f"connection reset mid-response: {data[:200]!r}")
        return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status, *reason = lines[0].split(" ", 2)
    assert version.startswith("HTTP/1."), lines[0]
    headers = http.client.parse_headers(io.BytesIO(("\r\n".join(lines[1:]) + "\r\n\r\n").encode("latin-1")))
    length = int(headers.get("Content-Length", "0"))
    while len(rest) < length:
        part = sock.recv(65536)
        if not part:
            break
        rest += part
    return Response(int(status), reason[0] if reason else "", headers, rest[:length])


def decode_chunked(data: bytes):
    """Decode a chunked HTTP body, possibly cut short. Returns (payload, complete): the bytes
    of every chunk received (a last, partial chunk included) and whether the terminating
    zero-size chunk was seen. A malformed chunk framing fails."""
    parts = []
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return b"".join(parts), False
        size_text = data[pos:eol].split(b";", 1)[0].strip()
        if not re.fullmatch(rb"[0-9a-fA-F]+", size_text):
            raise AssertionError(f"bad chunk size line at offset {pos}: {data[pos:pos + 40]!r}")
        size = int(size_text, 16)
        if size == 0:
            return b"".join(parts), data[eol + 2:eol + 4] == b"\r\n"
        start, end = eol + 2, eol + 2 + size
        if end + 2 > len(data):
            parts.append(data[start:end])
            return b"".join(parts), False
        if data[end:end + 2] != b"\r\n":
            raise AssertionError(f"chunk at offset {pos} not followed by CRLF: "
                                 f"{data[end:end + 20]!r}")
        parts.append(data[start:end])
        pos = end + 2


# --- raw WebSocket (for what a conforming client library will not do) -------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def ws_frame(opcode, payload: bytes, fin=True, mask=True) -> bytes:
    """One WebSocket frame; masked, as a client must send it."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    mask_bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 4096 else _mask_fast(payload, key)
    return head + key + masked


def _mask_fast(payload, key):
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def close_code(payload: bytes):
    """The status code of a close frame's payload (None when it carries none)."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


def parse_frames(buffer: bytes):
    """Every complete (unmasked) server frame at the start of `buffer`, in one pass.
    Returns ([(fin, opcode, payload), ...], bytes used). Linear in the buffer, for streams of
    many small frames (RawWebSocket.recv_frame copies the rest of the buffer per frame)."""
    frames = []
    pos = 0
    size = len(buffer)
    while pos + 2 <= size:
        b0, b1 = buffer[pos], buffer[pos + 1]
        assert not b1 & 0x80, "the server sent a masked frame"
        n, head = b1 & 0x7F, 2
        if n == 126:
            if pos + 4 > size:
                break
            n, head = struct.unpack_from("!H", buffer, pos + 2)[0], 4
        elif n == 127:
            if pos + 10 > size:
                break
            n, head = struct.unpack_from("!Q", buffer, pos + 2)[0], 10
        if pos + head + n > size:
            break
        frames.append((bool(b0 & 0x80), b0 & 0x0F, buffer[pos + head:pos + head + n]))
        pos += head + n
    return frames, pos


class RawWebSocket:
    """A WebSocket client on a plain socket: handshake, then frames in and out, unmasked
    server frames parsed one at a time. Every read is bounded by a timeout."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""
        self.response_head = b""

    @classmethod
    def connect(cls, port, path, *, rcvbuf=None, timeout=5.0):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # must be set before connect to limit the advertised window
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        try:
            sock.connect((HOST, port))
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(
                (
                    f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    f"Sec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            ws = cls(sock)
            ws._read_until(b"\r\n\r\n", timeout)
            head, _, ws.buffer = ws.buffer.partition(b"\r\n\r\n")
            ws.response_head = head
            status_line = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status_line + b" ":
                raise AssertionError(f"handshake refused: {head[:300]!r}")
            accept = base64.b64encode(
                hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
            )
            assert accept.lower() in head.lower(), f"bad Sec-WebSocket-Accept in {head!r}"
            return ws
        except BaseException:
            sock.close()
            raise

    def _read_until(self, marker, timeout):
        deadline = time.monotonic() + timeout
        while marker not in self.buffer:
            self._fill(deadline)

    def _fill(self, deadline, max_bytes=65536):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the server in time")
        self.sock.settimeout(remaining)
        data = self.sock.recv(max_bytes)
        if not data:
            raise EOFError("connection closed by the server")
        self.buffer += data

    def _need(self, n, deadline):
        while len(self.buffer) < n:
            self._fill(deadline)

    def recv_frame(self, timeout=5.0):
        """(fin, opcode, payload) of the next server frame. EOFError when the server closed
        the connection, TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        b0, b1 = self.buffer[0], self.buffer[1]
        assert not b1 & 0x80, "the server sent a masked frame"
        n, pos = b1 & 0x7F, 2
        if n == 126:
            self._need(4, deadline)
            n, pos = struct.unpack("!H", self.buffer[2:4])[0], 4
        elif n == 127:
            self._need(10, deadline)
            n, pos = struct.unpack("!Q", self.buffer[2:10])[0], 10
        self._need(pos + n, deadline)
        payload = self.buffer[pos:pos + n]
        self.buffer = self.buffer[pos + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_frames(self, timeout=5.0):
        """Every complete server frame buffered now, reading (bounded) until there is at
        least one: [(fin, opcode, payload), ...]. EOFError / TimeoutError as recv_frame."""
        deadline = time.monotonic() + timeout
        while True:
            frames, used = parse_frames(self.buffer)
            if frames:
                self.buffer = self.buffer[used:]
                return frames
            self._fill(deadline)

    def send_frame(self, opcode, payload: bytes, fin=True):
        self.sock.settimeout(5)
        self.sock.sendall(ws_frame(opcode, payload, fin=fin))

    def close(self):
        self.sock.close()
