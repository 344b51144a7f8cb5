"""The SDK's sync/async bridges, JSON consumer and lifespan, end to end through the demo.

Bounds: a sync handler that sleeps S ms holds its connection's pool thread, never an event
loop, so an async echo on the same (single) loop answers in about its idle round trip; were
the sleep on the loop, each echo would wait for up to a whole sleep. The limits below sit
between the two with wide margins (and scale with SLUICE_TEST_SLOWDOWN).
"""

import asyncio
import json
import statistics
import time

import pytest
import websockets

from conftest import SLOWDOWN, Proc, require_binary
from e2e_helpers import (
    free_port,
    http_request,
    metric,
    recv,
    run,
    scrape_metrics,
    wait_for_metric,
    wait_until,
    ws_connect,
)

SLEEP_MS = 500
SLEEPERS = 4        # sync clients sleeping at once (the pool has 16 threads by default)
ECHOES = 40
# An echo never waits for a sleep: its worst case stays far under one SLEEP_MS (an echo
# that waited for a sleep on the loop would wait up to SLEEP_MS, half of it on average).
ECHO_MAX = SLEEP_MS / 1000 * 0.6 * SLOWDOWN
ECHO_MEDIAN = 0.050 * SLOWDOWN


def one_loop_stack(start_worker, start_gateway, worker_args=()):
    # One event loop: a consumer that blocked it would stall every other connection.
    worker = start_worker(threads=1, admin=True, extra_args=list(worker_args))
    gateway = start_gateway([worker])
    return worker, gateway


async def echo_latencies(port, count):
    ws = await ws_connect(port, "/ws/echo")
    latencies = []
    for i in range(count):
        started = time.monotonic()
        await ws.send(f"ping {i}")
        assert await recv(ws) == f"ping {i}"
        latencies.append(time.monotonic() - started)
    await ws.close()
    return latencies


@pytest.mark.tsan
def test_sleeping_sync_consumers_do_not_delay_an_async_echo(start_worker, start_gateway):
    worker, gateway = one_loop_stack(start_worker, start_gateway)

    rounds = [0] * SLEEPERS

    async def sleeper(i, stop):
        ws = await ws_connect(gateway.port, "/ws/sync")
        while not stop.is_set():
            await ws.send(f"sleep:{SLEEP_MS}")
            assert await recv(ws, timeout=10) == f"slept:{SLEEP_MS}"
            rounds[i] += 1
        await ws.close()

    async def main():
        stop = asyncio.Event()
        sleepers = [asyncio.create_task(sleeper(i, stop)) for i in range(SLEEPERS)]
        # Echo until every sleeper has slept twice: the echoes span their sleeps.
        # The pool shows its work: a sleeper's call is running on it.
        await asyncio.to_thread(wait_for_metric, worker.admin_port, "sluice_worker_sync_running",
                                lambda v: v >= 1, 10 * SLOWDOWN, "a sleep on the SyncPool")
        latencies = []
        deadline = time.monotonic() + 20 * SLOWDOWN
        while min(rounds) < 2 or len(latencies) < ECHOES:
            assert time.monotonic() < deadline, f"sleepers stuck at {rounds}"
            latencies += await echo_latencies(gateway.port, 10)
        stop.set()
        await asyncio.gather(*sleepers)
        return latencies

    latencies = run(main())
    assert max(latencies) < ECHO_MAX, f"an echo waited {max(latencies) * 1000:.0f} ms"
    assert statistics.median(latencies) < ECHO_MEDIAN, latencies
    # The sleepers' time was spent on pool threads: the loop never stalled.
    samples = scrape_metrics(worker.admin_port)
    assert metric(samples, "sluice_worker_loop_stalls_total") == 0
    assert metric(samples, "sluice_worker_sync_rejected_total") == 0


def test_a_consumer_that_blocks_its_loop_is_reported(start_worker, start_gateway):
    """The counterpart of the test above: the same kind of sleep on the event loop itself
    delays the echoes sent meanwhile by up to the whole block (which the limits above would
    catch), and the watchdog logs and counts it, naming the consumer."""
    block_ms = 2 * SLEEP_MS
    worker, gateway = one_loop_stack(start_worker, start_gateway,
                                     ["--stall-threshold", "0.1"])

    async def main():
        blocker = await ws_connect(gateway.port, "/ws/misuse")
        echo = await ws_connect(gateway.port, "/ws/echo")
        await blocker.send(f"block:{block_ms}")
        blocked = asyncio.create_task(recv(blocker, timeout=10))
        # Echo back to back until the blocker answers: one echo is sent during the block
        # (whenever it starts) and waits for the rest of it.
        latencies = []
        while not blocked.done():
            started = time.monotonic()
            await echo.send("ping")
            assert await recv(echo, timeout=10) == "ping"
            latencies.append(time.monotonic() - started)
        assert blocked.result() == f"blocked:{block_ms}"
        await blocker.close()
        await echo.close()
        return max(latencies)

    waited = run(main())
    assert waited > ECHO_MAX / SLOWDOWN, f"no echo waited for the blocked loop ({waited})"
    wait_for_metric(worker.admin_port, "sluice_worker_loop_stalls_total", lambda v: v >= 1,
                    what="the stall counted")
    wait_until(lambda: "consumer for /ws/misuse" in worker.stderr_path.read_text(), 5,
               "the consumer named in the log")
    log = worker.stderr_path.read_text()
    assert "was the last to run before its event loop was blocked" in log, log[-2000:]
    assert "event loop 0 blocked for" in log, log[-2000:]


def test_sync_handlers_of_a_connection_run_on_one_thread(start_worker, start_gateway):
    worker, gateway = one_loop_stack(start_worker, start_gateway)

    async def main():
        a = await ws_connect(gateway.port, "/ws/sync")
        b = await ws_connect(gateway.port, "/ws/sync")
        threads = {"a": set(), "b": set()}
        for _ in range(20):
            for name, ws in (("a", a), ("b", b)):
                await ws.send("sleep:1")
                assert await recv(ws) == "slept:1"
                await ws.send("thread")
                threads[name].add(await recv(ws))
        # Blocking layer calls from a sync handler, answered through its On() handler.
        await a.send("group:sync_group")
        got = json.loads(await recv(a))
        assert got == {"type": "test.message", "group": "sync_group"}
        await a.send("thread")
        threads["a"].add(await recv(a))
        await a.close()
        await b.close()
        return threads

    threads = run(main())
    assert len(threads["a"]) == 1 and len(threads["b"]) == 1, threads
    assert threads["a"] != threads["b"], "two connections share one pool thread"


def test_async_to_sync_on_an_event_loop_is_refused_with_a_clear_error(start_worker,
                                                                      start_gateway):
    worker, gateway = one_loop_stack(start_worker, start_gateway)

    async def main():
        ws = await ws_connect(gateway.port, "/ws/misuse")
        await ws.send("async-to-sync")
        answer = await recv(ws)
        # The connection still works: nothing deadlocked.
        await ws.send("block:0")
        assert await recv(ws) == "blocked:0"
        await ws.close()
        return answer

    assert run(main()).startswith("AsyncToSync called on an event-loop thread")


def test_json_consumer(start_worker, start_gateway):
    worker, gateway = one_loop_stack(start_worker, start_gateway)

    async def close_code_after(message):
        ws = await ws_connect(gateway.port, "/ws/json")
        await ws.send(message)
        with pytest.raises(websockets.ConnectionClosed):
            await recv(ws)
        return ws.close_code, ws.close_reason

    async def main():
        ws = await ws_connect(gateway.port, "/ws/json")
        for value in ({"a": [1, 2.5, None, True]}, "text", 7, ["é", {"nested": {}}]):
            await ws.send(json.dumps(value))
            assert json.loads(await recv(ws)) == {"echo": value}
        await ws.close()
        assert await close_code_after("{not json") == (1007, "invalid JSON")
        code, _ = await close_code_after(b"\x00binary")
        assert code == 1003

    run(main())


def test_sync_http_consumer(start_worker, start_gateway):
    worker, gateway = one_loop_stack(start_worker, start_gateway)
    resp = http_request(gateway.port, "GET", "/sync/hello")
    assert resp.status == 200
    assert resp.body == b"hello from a sync consumer (0 body bytes)\n"
    # Past the 1 MiB threshold the body is spooled to a file before the handler runs.
    body = b"x" * (3 * 1024 * 1024 + 5)
    resp = http_request(gateway.port, "POST", "/sync/hello?sleep=50", body=body, timeout=30)
    assert resp.status == 200
    assert resp.body == b"hello from a sync consumer (3145733 body bytes)\n"


def test_a_failing_startup_hook_exits_non_zero_and_the_gateway_answers_503(
        start_gateway, tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("SLUICE_DEMO_FAIL_STARTUP", "no database")
    exe = require_binary("demo/sluice-demo-worker")
    worker = Proc("failing-worker", [str(exe), "--listen", f"127.0.0.1:{port}"], tmp_path)
    worker.expected_exit = True
    try:
        code = worker.popen.wait(timeout=10 * SLOWDOWN)
    finally:
        worker.shutdown()
    assert code == 3
    log = worker.stderr_path.read_text()
    assert "startup hook 'demo' failed: SLUICE_DEMO_FAIL_STARTUP is set: no database" in log, log
    monkeypatch.delenv("SLUICE_DEMO_FAIL_STARTUP")
    gateway = start_gateway([port], wait_ready=False)
    resp = http_request(gateway.port, "GET", "/hello")
    assert resp.status == 503, resp


def test_shutdown_hooks_run_on_sigterm(start_worker, start_gateway):
    worker = start_worker()
    gateway = start_gateway([worker])
    assert http_request(gateway.port, "GET", "/hello").status == 200
    assert worker.terminate_and_wait() == 0
    wait_until(lambda: "sluice-worker shutdown hooks ran" in worker.stdout_path.read_text(), 5,
               "the shutdown hook's line on stdout")
