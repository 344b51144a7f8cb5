"""Client-side helpers for the sluice end-to-end tests (stdlib + websockets only).

Every network operation here has a timeout, so a broken server fails a test instead of
hanging it.
"""

import asyncio
import email.utils
import http.client
import re
import socket
import threading
from dataclasses import dataclass

import websockets

HOST = "127.0.0.1"


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
