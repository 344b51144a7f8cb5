"""WebSocket through the gateway to the demo worker (websockets 10.x asyncio client)."""

import json
import os
import random
import string
import time

import pytest
import websockets

from e2e_helpers import HOST, check_same, recv, run, ws_connect

MiB = 1024 * 1024


@pytest.mark.tsan
def test_ws_echo_types_empty_and_large(stack):
    rng = random.Random(7)
    big_text = "".join(rng.choices(string.ascii_letters + string.digits, k=MiB))
    big_binary = os.urandom(MiB)
    messages = [
        ("text", "hello"),
        ("binary", b"\x00\x01\xfe\xff"),
        ("empty text", ""),
        ("empty binary", b""),
        ("non-ASCII text", "h\u00e9llo \u2713 \U0001f600"),
        ("1 MiB text", big_text),
        ("1 MiB binary", big_binary),
    ]

    async def main():
        async with ws_connect(stack.port, "/ws/echo") as ws:
            for what, message in messages:
                await ws.send(message)
                check_same(await recv(ws, timeout=10), message, what)

    run(main())


@pytest.mark.tsan
def test_ws_echo_many_messages_in_order(stack):
    messages = [f"m{i}" if i % 2 == 0 else b"b%d" % i for i in range(1000)]

    async def main():
        async with ws_connect(stack.port, "/ws/echo") as ws:
            for message in messages:
                await ws.send(message)
            received = [await recv(ws) for _ in messages]
        for i, (got, want) in enumerate(zip(received, messages)):
            check_same(got, want, f"message {i}")

    run(main())


@pytest.mark.parametrize(
    "offered, expected",
    [
        (["foo", "echo.v2", "echo.v1"], "echo.v2"),
        (["echo.v1", "echo.v2"], "echo.v1"),
        (["foo"], None),
        (None, None),
    ],
)
def test_ws_subprotocol_negotiation(stack, offered, expected):
    async def main():
        async with ws_connect(stack.port, "/ws/echo", subprotocols=offered) as ws:
            assert ws.subprotocol == expected
            await ws.send("still echoes")
            assert await recv(ws) == "still echoes"

    run(main())


def test_ws_scope(stack):
    offered = ["foo", "echo.v1"]

    async def main():
        async with ws_connect(
            stack.port, "/ws/scope?x=1%202", subprotocols=offered,
            extra_headers=[("X-Test", "Yes")],
        ) as ws:
            first = await recv(ws)
            assert isinstance(first, str), "first message must be text"
            scope = json.loads(first)
            local_port = ws.local_address[1]
            await ws.send("after scope")
            echoed = await recv(ws)
        return scope, local_port, echoed

    scope, local_port, echoed = run(main())
    assert scope["type"] == "websocket"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/ws/scope"
    assert scope["raw_path"] == "/ws/scope"
    assert scope["query_string"] == "x=1%202"
    assert scope["subprotocols"] == offered
    assert "method" not in scope
    assert all(name == name.lower() for name, _ in scope["headers"]), scope["headers"]
    assert ["x-test", "Yes"] in scope["headers"]
    assert ["host", f"{HOST}:{stack.port}"] in scope["headers"]
    assert scope["client"] == [HOST, local_port]
    assert scope["server"] == [HOST, stack.port]
    assert echoed == "after scope"


def test_ws_client_close_code_4001(stack):
    async def main():
        async with ws_connect(stack.port, "/ws/echo", close_timeout=5) as ws:
            await ws.send("ping")
            assert await recv(ws) == "ping"
            started = time.monotonic()
            await ws.close(code=4001, reason="bye")
            elapsed = time.monotonic() - started
            assert ws.closed
            assert ws.close_rcvd is not None, "server never answered the close frame"
            assert ws.close_rcvd.code in (4001, 1000), f"server answered close with {ws.close_rcvd}"
            assert ws.transport.is_closing()
            # websockets waits up to close_timeout for the server to close TCP (RFC 6455 7.1.1)
            assert elapsed < 4, f"closing handshake + TCP close took {elapsed:.1f} s"
        # the gateway still serves
        async with ws_connect(stack.port, "/ws/echo") as ws:
            await ws.send("again")
            assert await recv(ws) == "again"

    run(main())


def test_ws_consumer_error_closes_1011(stack):
    async def main():
        async with ws_connect(stack.port, "/ws/error") as ws:
            await ws.send("boom")
            try:
                got = await recv(ws, timeout=5)
            except websockets.exceptions.ConnectionClosed as exc:
                assert exc.rcvd is not None, f"no close frame from the server ({exc})"
                assert exc.rcvd.code == 1011
            else:
                pytest.fail(f"expected close 1011, received a message {got!r}")

    run(main())


@pytest.mark.parametrize("path", ["/ws/deny", "/ws/no-such-route"])
def test_ws_handshake_rejected_403(stack, path):
    async def main():
        async with ws_connect(stack.port, path):
            pass

    with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
        run(main())
    assert info.value.status_code == 403
