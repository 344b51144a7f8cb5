"""HTTP/1.1 through the gateway to the demo worker."""

import http.client
import json
import os
import random
import socket
import time

import pytest

from e2e_helpers import HOST, check_same, duplex_request, http_request


def test_hello(stack):
    resp = http_request(stack.port, "GET", "/hello")
    assert resp.status == 200
    assert resp.headers.get_content_type() == "text/plain"
    assert resp.body == b"Hello, world"


@pytest.mark.tsan
def test_keep_alive_reuses_one_connection(stack):
    conn = http.client.HTTPConnection(HOST, stack.port, timeout=5)
    used_sockets = []

    def exchange(method, path, body=None):
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        data = resp.read()
        assert not resp.will_close, (
            f"{method} {path}: server ended keep-alive (Connection: "
            f"{resp.getheader('Connection')!r}, HTTP/{resp.version / 10})"
        )
        assert conn.sock is not None
        used_sockets.append(conn.sock)
        return resp, data

    try:
        for _ in range(3):
            resp, data = exchange("GET", "/hello")
            assert (resp.status, data) == (200, b"Hello, world")
        local_port = conn.sock.getsockname()[1]

        resp, data = exchange("GET", "/scope")
        assert resp.status == 200
        assert json.loads(data)["client"] == [HOST, local_port]

        body = os.urandom(10_000)
        resp, data = exchange("POST", "/echo", body)
        assert resp.status == 200
        check_same(data, body, "echo body")

        resp, data = exchange("GET", "/scope")
        assert resp.status == 200
        assert json.loads(data)["client"] == [HOST, local_port]

        assert all(s is used_sockets[0] for s in used_sockets), "http.client had to reconnect"
    finally:
        conn.close()


def _random_pieces(data, seed):
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        n = rng.randint(1, 256 * 1024)
        yield data[pos:pos + n]
        pos += n


@pytest.mark.tsan
def test_echo_chunked_8mib(stack):
    data = os.urandom(8 * 1024 * 1024)
    resp = duplex_request(stack.port, "POST", "/echo", _random_pieces(data, 1), chunked=True)
    assert resp.status == 200
    check_same(resp.body, data, "echoed body")


def test_echo_content_length_1mib(stack):
    data = os.urandom(1024 * 1024 + 17)
    resp = duplex_request(
        stack.port, "POST", "/echo", _random_pieces(data, 2), chunked=False,
        content_length=len(data),
    )
    assert resp.status == 200
    check_same(resp.body, data, "echoed body")


def test_echo_chunked_with_http_client(stack):
    # http.client's own chunked encoder (half duplex: body fully sent before reading), with a
    # body small enough for any sane buffering; the 8 MiB case above reads concurrently.
    data = os.urandom(200_000)
    conn = http.client.HTTPConnection(HOST, stack.port, timeout=10)
    try:
        conn.request("POST", "/echo", body=_random_pieces(data, 3), encode_chunked=True)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200
        check_same(body, data, "echoed body")
    finally:
        conn.close()


def test_echo_empty_body(stack):
    resp = http_request(stack.port, "POST", "/echo", body=b"")
    assert resp.status == 200
    assert resp.body == b""


@pytest.mark.tsan
def test_sse_streams_events_one_by_one(stack):
    conn = http.client.HTTPConnection(HOST, stack.port, timeout=5)
    try:
        conn.request("GET", "/sse?interval_ms=200&count=5")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.headers.get_content_type() == "text/event-stream"

        raw = b""
        arrivals = []  # time each event's terminating blank line arrived
        deadline = time.monotonic() + 10
        while True:
            assert time.monotonic() < deadline, f"stream still open after 10 s; got {raw!r}"
            try:
                line = resp.readline()
            except socket.timeout:
                raise AssertionError(f"no data for 5 s; response not ended; got {raw!r}")
            if not line:
                break
            raw += line
            if line == b"\n":
                arrivals.append(time.monotonic())

        expected = b"".join(b"data: %d\n\n" % i for i in range(1, 6))
        assert raw == expected
        assert len(arrivals) == 5
        spread = arrivals[-1] - arrivals[0]
        assert spread >= 0.6, f"events arrived within {spread:.3f} s: buffered, not streamed"
    finally:
        conn.close()


def test_scope_http(stack):
    conn = http.client.HTTPConnection(HOST, stack.port, timeout=5)
    try:
        conn.putrequest("GET", "/scope?a=1&b=%20x", skip_accept_encoding=True)
        conn.putheader("x-dup", "1")
        conn.putheader("X-Mixed-Case", "Keep Value Case")
        conn.putheader("X-Dup", "2")
        conn.endheaders()
        local_port = conn.sock.getsockname()[1]
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()

    assert resp.status == 200
    assert resp.headers.get_content_type() == "application/json"
    scope = json.loads(body)
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert isinstance(scope["asgi"].get("spec_version"), str)
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope"
    assert scope["query_string"] == "a=1&b=%20x"
    assert scope["root_path"] == ""
    assert scope["headers"] == [
        ["host", f"{HOST}:{stack.port}"],
        ["x-dup", "1"],
        ["x-mixed-case", "Keep Value Case"],
        ["x-dup", "2"],
    ]
    assert scope["client"] == [HOST, local_port]
    assert scope["server"] == [HOST, stack.port]


def test_scope_header_value_latin1(stack):
    # obs-text (byte 0xE9) in a header value: the scope gives bytes as Latin-1 text.
    resp = http_request(stack.port, "GET", "/scope", headers=[("X-Latin", "caf\xe9")])
    assert resp.status == 200
    headers = json.loads(resp.body)["headers"]
    assert ["x-latin", "caf\u00e9"] in headers


def test_unknown_path_404(stack):
    assert http_request(stack.port, "GET", "/no/such/path").status == 404


def test_consumer_error_500_then_server_keeps_serving(stack):
    for _ in range(3):
        assert http_request(stack.port, "GET", "/error").status == 500
    resp = http_request(stack.port, "GET", "/hello")
    assert (resp.status, resp.body) == (200, b"Hello, world")
