"""Backpressure end to end: memory stays bounded when one side is slow, a slow reader is
closed (1008) without slowing anyone else, and the gateway pauses reading instead of
buffering."""

import asyncio
import threading
import time

import pytest

import e2e_helpers
from e2e_helpers import (
    KiB,
    MiB,
    window_rss_bound,
    OP_CLOSE,
    OP_TEXT,
    RawWebSocket,
    RssSampler,
    close_code,
    metric,
    recv,
    run,
    scrape_metrics,
    wait_for_metric,
    ws_connect,
    ws_frame,
)

STALLS_TO_WORKER = 'sluice_gateway_credit_stalls_total{direction="to_worker"}'


def _numbered(i, size=KiB) -> str:
    """Message i: its sequence number, a space, padding to `size` (distinct per i)."""
    head = f"{i} "
    return head + (f"{i % 97:02d}" * size)[: size - len(head)]


async def _echo_round_trips(ws, start, count, timeout=10.0):
    for i in range(start, start + count):
        await ws.send(_numbered(i))
    for i in range(start, start + count):
        got = await recv(ws, timeout)
        assert got == _numbered(i), f"echo {i}: got {got[:20]!r}..."


# --- 1. flood a slow consumer -----------------------------------------------------------------

FLOOD_MESSAGES = 100_000
WARM_UP = 300


@pytest.mark.long_running
def test_flood_slow_consumer_bounded_memory(start_worker, start_gateway):
    """100 000 × 1 KiB as fast as the socket takes them, to a consumer that sleeps 1 ms per
    message: every echo arrives, in order, exactly; neither process grows by 32 MiB; the
    gateway paused reading from the client (credit stalls toward the worker)."""
    worker = start_worker(admin=True)
    gateway = start_gateway([worker], admin=True)
    rss = None

    async def main():
        nonlocal rss
        async with ws_connect(gateway.port, "/ws/slow?delay_ms=1", close_timeout=10) as ws:
            await _echo_round_trips(ws, 0, WARM_UP)
            rss = RssSampler({"gateway": gateway.pid, "worker": worker.pid}, interval=0.1)
            with rss:
                async def sender():
                    for i in range(WARM_UP, FLOOD_MESSAGES):
                        await ws.send(_numbered(i))  # waits while the socket is full

                async def receiver():
                    for i in range(WARM_UP, FLOOD_MESSAGES):
                        got = await recv(ws, timeout=30)
                        if got != _numbered(i):
                            raise AssertionError(
                                f"echo {i}: got {len(got)} chars starting {got[:16]!r}, "
                                f"want {_numbered(i)[:16]!r}"
                            )

                send_task = asyncio.create_task(sender())
                try:
                    await receiver()
                finally:
                    if not send_task.done():
                        send_task.cancel()
                await send_task

    started = time.monotonic()
    run(main(), timeout=300)
    assert rss is not None
    print(f"flood: {FLOOD_MESSAGES} messages in {time.monotonic() - started:.1f} s; {rss.report()}")
    bound = window_rss_bound(connections=1, message_bytes=KiB)
    for name in ("gateway", "worker"):
        rss.assert_growth_below(name, bound)
    samples = scrape_metrics(gateway.admin_port)
    assert metric(samples, STALLS_TO_WORKER) > 0, "the gateway never paused reading the client"
    assert metric(scrape_metrics(worker.admin_port), "sluice_worker_protocol_errors_total") == 0


# --- 2. one slow reader among fast clients ----------------------------------------------------

SLOW_TIMEOUT = 2  # --slow-client-timeout
FAST_CLIENTS = 10
FAST_PHASE = 6.0  # seconds of fast round trips
# The slowest allowed round trip. A slow client that stalled the others would hold them for
# --slow-client-timeout (2 s) at least; scheduling on a loaded 2-core machine stays far
# below half of that.
FAST_LIMIT = SLOW_TIMEOUT / 2


class SlowReader(threading.Thread):
    """Opens /ws/firehose with a 4 KiB receive buffer and reads 1 KiB a second until
    `drain_now()` says so (or `max_trickle` seconds passed), then drains quickly and records
    the frames up to the close frame."""

    def __init__(self, port, drain_now, max_trickle):
        super().__init__(daemon=True)
        self.port = port
        self.drain_now = drain_now
        self.max_trickle = max_trickle
        self.texts = 0
        self.last_sequence = -1
        self.close_payload = None
        self.error = None
        self.trickled = 0
        self.trickle_seconds = None
        self.eof_during_trickle = False
        self.opened = threading.Event()

    def run(self):
        try:
            ws = RawWebSocket.connect(self.port, "/ws/firehose?count=100000&size=1024", rcvbuf=4096)
        except BaseException as exc:
            self.error = exc
            self.opened.set()
            return
        self.opened.set()
        try:
            started = time.monotonic()
            next_read = started
            while not self.drain_now() and time.monotonic() - started < self.max_trickle:
                if time.monotonic() >= next_read:
                    next_read += 1.0
                    before = len(ws.buffer)
                    try:
                        ws._fill(time.monotonic() + 0.5, max_bytes=1024)
                    except TimeoutError:
                        pass
                    except EOFError:
                        self.eof_during_trickle = True
                        break
                    self.trickled += len(ws.buffer) - before
                time.sleep(0.05)
            self.trickle_seconds = time.monotonic() - started
            deadline = time.monotonic() + 15
            while True:  # drain: frames until the close frame
                _, opcode, payload = ws.recv_frame(timeout=max(0.1, deadline - time.monotonic()))
                if opcode == OP_CLOSE:
                    self.close_payload = payload
                    try:
                        ws.sock.sendall(ws_frame(OP_CLOSE, payload[:2]))
                    except OSError:
                        pass
                    break
                assert opcode == OP_TEXT, f"unexpected opcode {opcode}"
                sequence = int(payload.split(b" ", 1)[0])
                assert sequence == self.last_sequence + 1, (
                    f"message {sequence} after {self.last_sequence}: gap or reorder"
                )
                assert len(payload) == 1024, f"message {sequence}: {len(payload)} bytes"
                self.last_sequence = sequence
                self.texts += 1
        except BaseException as exc:
            self.error = exc
        finally:
            ws.close()


@pytest.mark.tsan
def test_slow_reader_closed_1008_fast_clients_unaffected(start_worker, start_gateway):
    worker = start_worker(admin=True)
    gateway = start_gateway(
        [worker], admin=True, extra_args=["--slow-client-timeout", str(SLOW_TIMEOUT)]
    )
    before = scrape_metrics(gateway.admin_port)
    closes = "sluice_gateway_slow_client_closes_total"

    def gateway_gave_up():
        # The gateway has decided to close (1008); from now on the close frame waits only
        # for the client to drain what is in flight, for up to another --slow-client-timeout.
        return metric(scrape_metrics(gateway.admin_port), closes) > metric(before, closes)

    slow = SlowReader(gateway.port, gateway_gave_up, max_trickle=SLOW_TIMEOUT + 6)
    worst = {}

    async def fast_client(n, ws):
        worst_rt = 0.0
        i = 0
        deadline = time.monotonic() + FAST_PHASE
        while time.monotonic() < deadline:
            message = f"fast {n} {i}"
            started = time.monotonic()
            await ws.send(message)
            got = await recv(ws, timeout=5)
            elapsed = time.monotonic() - started
            assert got == message
            worst_rt = max(worst_rt, elapsed)
            i += 1
            await asyncio.sleep(0.010)
        worst[n] = (worst_rt, i)

    async def main():
        sockets = [await ws_connect(gateway.port, "/ws/echo") for _ in range(FAST_CLIENTS)]
        try:
            for ws in sockets:  # warm up every connection
                await ws.send("warm")
                assert await recv(ws) == "warm"
            with RssSampler({"gateway": gateway.pid, "worker": worker.pid}) as rss:
                slow.start()
                assert await asyncio.to_thread(slow.opened.wait, 5), "slow reader not connected"
                assert slow.error is None, f"slow reader: {slow.error!r}"
                await asyncio.gather(*(fast_client(n, ws) for n, ws in enumerate(sockets)))
                await asyncio.to_thread(slow.join, 30)
            return rss
        finally:
            for ws in sockets:
                await ws.close()

    rss = run(main(), timeout=60)
    assert not slow.is_alive(), "slow reader still running"
    assert slow.error is None, (
        f"slow reader: {slow.error!r} (after {slow.trickle_seconds} s of trickle, "
        f"{slow.texts} messages drained)"
    )
    assert slow.trickle_seconds >= SLOW_TIMEOUT - 0.5, (
        f"the gateway gave up on the slow client after {slow.trickle_seconds:.1f} s "
        f"(--slow-client-timeout {SLOW_TIMEOUT})"
    )

    print(f"fast clients (worst ms, round trips): "
          f"{[(round(w * 1000, 1), n) for w, n in worst.values()]}")
    print(f"slow reader: trickled {slow.trickled} B for {slow.trickle_seconds} s, then drained "
          f"{slow.texts} messages; close {slow.close_payload!r}; {rss.report()}")
    slowest = max(worst.values())
    assert len(worst) == FAST_CLIENTS
    assert slowest[0] < FAST_LIMIT, (
        f"a fast client's round trip took {slowest[0] * 1000:.0f} ms; per client "
        f"(worst ms, round trips): {[(round(w * 1000), n) for w, n in worst.values()]}"
    )
    assert not slow.eof_during_trickle, "connection ended without a close frame"
    assert slow.close_payload is not None, f"no close frame after {slow.texts} messages"
    assert close_code(slow.close_payload) == 1008, f"close frame {slow.close_payload!r}"
    assert slow.texts < 100_000, "the firehose was delivered whole: the reader was not slow"
    assert metric(scrape_metrics(gateway.admin_port), closes) >= metric(before, closes) + 1
    bound = window_rss_bound(connections=1 + FAST_CLIENTS, message_bytes=KiB)
    for name in ("gateway", "worker"):
        rss.assert_growth_below(name, bound)
    # the firehose instance ended (its client is gone) and nothing stays queued
    wait_for_metric(worker.admin_port, "sluice_worker_instances", lambda v: v == 0, timeout=10,
                    what="0 instances")
    wait_for_metric(gateway.admin_port, "sluice_gateway_queued_bytes", lambda v: v == 0,
                    what="0 queued bytes")


# --- 3. a large upload to a slow consumer is never buffered whole -----------------------------

UPLOAD_MESSAGES = 40


@pytest.mark.tsan
def test_large_ws_upload_to_slow_consumer_is_not_buffered(start_worker, start_gateway):
    """40 MiB in 1 MiB messages to a consumer that takes 100 ms per message: the gateway
    reads only as fast as the consumer takes them, so its RSS stays within the windows (one
    connection, 1 MiB messages: well under the 40 MiB sent) and it records credit stalls
    toward the worker."""
    worker = start_worker(admin=True)
    gateway = start_gateway([worker], admin=True, extra_args=["--max-ws-message", str(2 * MiB)])
    count = UPLOAD_MESSAGES
    payloads = [bytes([i]) * MiB for i in range(count)]
    checked = {}

    async def main():
        async with ws_connect(gateway.port, "/ws/slow?delay_ms=100", close_timeout=10) as ws:
            await ws.send(b"w" * MiB)  # warm-up: allocate the 1 MiB buffers once
            assert await recv(ws, timeout=10) == b"w" * MiB
            with RssSampler({"gateway": gateway.pid}) as rss:
                async def sender():
                    for payload in payloads:
                        await ws.send(payload)

                send_task = asyncio.create_task(sender())
                try:
                    await asyncio.sleep(2.0)
                    checked["stalls"] = metric(scrape_metrics(gateway.admin_port), STALLS_TO_WORKER)
                    checked["growth_2s"] = rss.growth("gateway")
                    for i in range(count):
                        got = await recv(ws, timeout=15)
                        assert got == payloads[i], f"echo {i} differs"
                    await send_task
                finally:
                    send_task.cancel()
            checked["report"] = rss.report()
            checked["growth"] = rss.growth("gateway")

    run(main(), timeout=60)
    print(f"upload: stalls after 2 s {checked['stalls']}, {checked['report']}")
    assert checked["stalls"] > 0, "after 2 s the gateway had never paused reading the client"
    # One message being assembled in the gateway on top of the windows.
    bound = window_rss_bound(connections=1, message_bytes=MiB) + MiB
    assert bound < count * MiB / 2, "the bound would not tell a buffered upload apart"
    if e2e_helpers.RSS_BOUNDS_BIND:
        assert checked["growth_2s"] < bound, f"gateway RSS after 2 s: {checked['report']}"
        assert checked["growth"] < bound, f"gateway RSS: {checked['report']}"
