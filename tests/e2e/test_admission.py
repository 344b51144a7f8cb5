"""Admission control: no reachable worker, workers at capacity, and process shutdown."""

import asyncio
import signal
import time

import pytest
import websockets

from e2e_helpers import (
    check_retry_after,
    free_port,
    handshake_status,
    http_request,
    recv,
    run,
    ws_connect,
)

FAST = 0.100  # seconds: "503 immediately"


def _timed_hello(port):
    started = time.monotonic()
    resp = http_request(port, "GET", "/hello", timeout=5)  # fresh connection + request
    return resp, time.monotonic() - started


def _poll_status(port, wanted, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = http_request(port, "GET", "/hello", timeout=2).status
            if last == wanted:
                return
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.05)
    pytest.fail(f"GET /hello never returned {wanted} within {timeout} s (last: {last})")


def _assert_fast_503s(port, tries=3):
    for _ in range(tries):
        resp, elapsed = _timed_hello(port)
        assert resp.status == 503
        check_retry_after(resp.headers)
        assert elapsed < FAST, f"503 took {elapsed * 1000:.0f} ms"


@pytest.mark.tsan
def test_worker_killed_gateway_answers_503_fast(stack):
    stack.worker.kill()
    _poll_status(stack.port, 503, timeout=10)
    _assert_fast_503s(stack.port)
    assert run(handshake_status(stack.port, "/ws/echo")) == 503


def test_unreachable_worker_503_at_once(start_gateway):
    gateway = start_gateway([free_port()], wait_ready=False)
    _assert_fast_503s(gateway.port)
    assert run(handshake_status(gateway.port, "/ws/echo")) == 503


@pytest.mark.tsan
def test_one_of_two_workers_killed_still_served(start_worker, start_gateway):
    first, second = start_worker(), start_worker()
    gateway = start_gateway([first, second])
    first.kill()
    # Once the gateway noticed the dead link, every request goes to the live worker.
    deadline = time.monotonic() + 10
    streak, last = 0, None
    while streak < 20:
        assert time.monotonic() < deadline, f"no 20 consecutive 200s within 10 s (last {last})"
        last = http_request(gateway.port, "GET", "/hello", timeout=2).status
        streak = streak + 1 if last == 200 else 0
        if last != 200:
            time.sleep(0.05)


async def _open_with_retry(port, path, timeout):
    """Open a WebSocket, retrying while the handshake is answered 503 (capacity is
    released asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await ws_connect(port, path)
        except websockets.exceptions.InvalidStatusCode as exc:
            if exc.status_code != 503 or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.05)


async def _echo(ws, text):
    await ws.send(text)
    assert await recv(ws) == text


def test_capacity_limit(start_worker, start_gateway):
    worker = start_worker(capacity=2)
    gateway = start_gateway([worker])
    port = gateway.port

    async def main():
        open_sockets = []
        try:
            # retry: the readiness probe's GET /hello may not be released yet
            for _ in range(2):
                open_sockets.append(await _open_with_retry(port, "/ws/echo", timeout=2))
            ws1, ws2 = open_sockets
            await _echo(ws1, "one")
            await _echo(ws2, "two")

            assert await handshake_status(port, "/ws/echo") == 503
            resp = await asyncio.to_thread(http_request, port, "GET", "/hello")
            assert resp.status == 503
            check_retry_after(resp.headers)

            await _echo(ws1, "one again")
            await _echo(ws2, "two again")

            await ws1.close()
            ws3 = await _open_with_retry(port, "/ws/echo", timeout=2)
            open_sockets.append(ws3)
            await _echo(ws3, "three")
            await _echo(ws2, "two still")
        finally:
            for ws in open_sockets:
                await ws.close()

    run(main())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_processes_exit_cleanly_on_signal(stack, sig):
    assert http_request(stack.port, "GET", "/hello").status == 200
    code = stack.gateway.terminate_and_wait(sig, timeout=5)
    assert code is not None, "gateway did not exit within 5 s"
    assert code == 0, f"gateway exit code {code}"
    code = stack.worker.terminate_and_wait(sig, timeout=5)
    assert code is not None, "worker did not exit within 5 s"
    assert code == 0, f"worker exit code {code}"
