#!/usr/bin/env python3
"""Writes the seed corpora of the WebSocket and link fuzz targets (fuzz/corpus/<target>/).
Run from the repository root; needs protoc (Frames are encoded with `protoc --encode`).
The request_parser seeds are plain HTTP requests, kept by hand."""

import os
import struct
import subprocess

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
MASK = b"\x11\x22\x33\x44"


def frame(first, payload=b"", masked=True):
    n = len(payload)
    head = bytes([first])
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n <= 0xFFFF:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def write(target, name, data):
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def encode_frame(text):
    return subprocess.run(
        ["protoc", "--proto_path=protos", "--encode=sluice.v1.Frame", "sluice/v1/link.proto"],
        input=text.encode(), capture_output=True, check=True).stdout


def framed(*texts):
    out = b""
    for text in texts:
        data = encode_frame(text)
        out += struct.pack("!H", len(data)) + data
    return out


FRAMES = {
    "text": frame(0x81, b"hello"),
    "binary": frame(0x82, bytes(range(40))),
    "fragmented_with_ping": frame(0x01, b"frag") + frame(0x89, b"p") + frame(0x80, b"ment"),
    "medium": frame(0x81, b"m" * 300),
    "close_1000": frame(0x88, b"\x03\xe8bye"),
    "close_5000": frame(0x88, b"\x13\x88"),
    "close_empty": frame(0x88),
    "pong": frame(0x8A, b"x"),
    "unmasked": frame(0x81, b"x", masked=False),
    "bad_utf8": frame(0x81, b"\xc0\xaf"),
    "split_utf8": frame(0x01, b"caf\xc3") + frame(0x80, b"\xa9"),
    "rsv1": frame(0xC1, b"x"),
}


def main():
    for name, data in FRAMES.items():
        write("websocket_frames", name, bytes([len(name)]) + data)
    # websocket_session: ops (see the target): 0-2 client bytes (len, bytes), 3 worker event
    # (kind: 0 accept, 1 send, 2 close), 4 grant, 5 instance ends, 6 time, 7 read / link lost.
    def client(data):
        return bytes([0, len(data) - 1 if len(data) else 0]) + data
    accept = bytes([3, 0])
    write("websocket_session", "accept_echo",
          accept + client(FRAMES["text"]) + bytes([3, 1, 5]) + b"world" + bytes([7, 1]))
    write("websocket_session", "accept_then_close",
          accept + client(FRAMES["close_1000"]) + bytes([7, 1, 6, 10]))
    write("websocket_session", "deny", bytes([3, 2, 0]))
    write("websocket_session", "handshake_timeout", bytes([6, 29, 6, 29]))
    write("websocket_session", "flood_without_credit",
          accept + b"".join(client(frame(0x81, bytes([65 + i]) * 10)) for i in range(8))
          + bytes([4, 0]) + bytes([7, 1]))
    write("websocket_session", "ping_idle",
          accept + client(FRAMES["fragmented_with_ping"]) + bytes([6, 25, 6, 25]))
    write("websocket_session", "link_lost", accept + bytes([7, 0]))
    # gateway_link: Frames a worker sends (ids fold onto: 0 the HTTP request, 1 the WebSocket).
    write("gateway_link", "response", framed(
        'envelopes { connection_id: 0 events { http_response_start { status: 200 '
        'headers { name: "content-length" value: "2" } } } '
        'events { http_response_body { body: "hi" } } close { reason: REASON_DONE } }'))
    write("gateway_link", "streamed_then_cut", framed(
        'envelopes { connection_id: 0 events { http_response_start { status: 200 } } '
        'events { http_response_body { body: "a" more_body: true } } }',
        'envelopes { connection_id: 0 close { reason: REASON_APP_ERROR detail: "boom" } }'))
    write("gateway_link", "ws_messages_and_close", framed(
        'envelopes { connection_id: 1 events { websocket_send { data: "x" } } '
        'events { websocket_send { data: "\\000\\001" binary: true } } }',
        'envelopes { connection_id: 1 events { websocket_close { code: 4000 reason: "r" } } }',
        'capacity { capacity: 10 active_total: 3 active_link: 1 draining: true }'))
    write("gateway_link", "overrun", framed(
        'envelopes { connection_id: 1 ' + ' '.join(
            'events { websocket_send { data: "m" } }' for _ in range(8)) + ' }'))
    write("gateway_link", "wrong_events", framed(
        'envelopes { connection_id: 1 events { http_response_start { status: 99 } } }',
        'envelopes { connection_id: 0 events { websocket_accept { } } credit { events: 3 } }'))
    # worker_link: Frames a gateway sends, after its Hello (ids fold onto 0-3).
    write("worker_link", "http_hello", framed(
        'envelopes { connection_id: 1 open { scope { type: TYPE_HTTP method: "GET" '
        'path: "/hello" http_version: "1.1" } } events { http_request { } } }'))
    write("worker_link", "echo_body", framed(
        'envelopes { connection_id: 2 open { scope { type: TYPE_HTTP method: "POST" '
        'path: "/echo" } } events { http_request { body: "abc" more_body: true } } }',
        'envelopes { connection_id: 2 events { http_request { body: "def" } } }'))
    write("worker_link", "websocket_echo", framed(
        'envelopes { connection_id: 3 open { scope { type: TYPE_WEBSOCKET path: "/ws/echo" '
        'subprotocols: "echo.v1" } } events { websocket_connect { } } }',
        'envelopes { connection_id: 3 events { websocket_receive { data: "hi" } } '
        'credit { events: 4 bytes: 100 } }',
        'envelopes { connection_id: 3 events { websocket_disconnect { code: 1000 } } }'))
    write("worker_link", "overrun_and_twice", framed(
        'envelopes { connection_id: 1 open { scope { type: TYPE_WEBSOCKET path: "/ws/echo" } } '
        + ' '.join('events { websocket_receive { data: "x" } }' for _ in range(8)) + ' }',
        'envelopes { connection_id: 1 open { scope { type: TYPE_HTTP path: "/hello" } } }'))
    write("worker_link", "events_without_open", framed(
        'envelopes { connection_id: 0 events { http_request { body: "x" } } }'))


if __name__ == "__main__":
    main()
