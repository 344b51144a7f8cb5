"""Workers come and go, sockets stay (docs/failover.md): chaos under load, end to end.

Every test runs the same load against one gateway and its workers, on loopback, bounded:
WebSocket clients in rooms of the demo's /ws/tally/{room} (a chat whose consumers count each
connection's messages and save the count, so a moved consumer goes on from its saved
state), and HTTP clients looping GET /hello on keep-alive connections. While the load runs,
the test does something to the workers (kill -9, SIGTERM one by one, SIGSTOP, start more)
and then checks what the clients saw:

- no WebSocket closed;
- every message reached every member of its room: nothing lost (a message in flight at a
  failure may arrive twice: duplicates are counted and reported, never an error);
- each sender's messages carry n = 1, 2, 3 ... in the order sent: the count lives in the
  consumer's saved state, so a consumer that resumed without it would start again at 1;
- every GET /hello got its 200.
"""

import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass, field

import pytest
import websockets

from e2e_helpers import HOST, free_port, metric, scrape_metrics, wait_for_metric, ws_connect

G = "sluice_gateway_"
WORKERS_READY = G + "workers_ready"
MOVED = G + 'moves_total{result="moved"}'
NO_WORKER = G + 'moves_total{result="no_worker"}'
HANDOVERS = G + "handovers_total"
REPLAYED = G + "replayed_events_total"
RETRIED = G + 'http_retries_total{result="retried"}'
NOT_RETRIED = G + 'http_retries_total{result="failed"}'
INSTANCES_STARTED = "sluice_worker_instances_started_total"

# Heartbeats: 1 s on both ends; a link is given up after 4 silent intervals.
HEARTBEAT_GIVE_UP = 4.0
# What a test may wait for all messages to arrive after the last was sent: generous, since
# the clients, the gateway and three workers share two cores.
SETTLE = 60.0
WORKER_DRAIN = 5.0  # each worker's --drain-timeout


@dataclass
class Client:
    room: int
    index: int
    ws: object = None
    sent: int = 0                                # messages sent, numbered 0..sent-1
    seen: dict = field(default_factory=dict)     # (sender, i) -> n, first arrival
    duplicates: int = 0
    bad_n: list = field(default_factory=list)    # (sender, i, n) with n != i + 1
    closed: object = None  # how the connection ended before the test closed it, if it did

    @property
    def name(self):
        return f"r{self.room}c{self.index}"


class Load:
    """The clients, their counters, and the loop that drives them."""

    def __init__(self, port, *, rooms, per_room, http_clients, interval=0.1):
        self.port = port
        self.clients = [Client(r, i) for r in range(rooms) for i in range(per_room)]
        self.http_clients = http_clients
        self.interval = interval
        self.http_ok = 0
        self.http_failures = []
        self.stop_sending = asyncio.Event()
        self.stop_http = asyncio.Event()
        self.closing = False  # the test is closing the WebSockets itself
        self.started = asyncio.Event()  # every client has sent two messages
        self._starting = len(self.clients)
        self.room_of = {c.name: c.room for c in self.clients}

    async def connect(self):
        for client in self.clients:
            client.ws = await ws_connect(self.port, f"/ws/tally/chaos{client.room}")

    async def _read(self, client):
        try:
            async for text in client.ws:
                message = json.loads(text)
                sender, _, i = message["text"].rpartition(":")
                key = (sender, int(i))
                if key in client.seen:
                    client.duplicates += 1
                    continue
                client.seen[key] = message["n"]
                if message["n"] != int(i) + 1:
                    client.bad_n.append((sender, int(i), message["n"]))
        except websockets.ConnectionClosed:
            pass
        if not self.closing:
            client.closed = f"close code {client.ws.close_code} {client.ws.close_reason!r}"

    async def _write(self, client):
        # Staggered, so that messages are in flight at any moment.
        await asyncio.sleep(self.interval * (hash(client.name) % 10) / 10)
        while not self.stop_sending.is_set():
            try:
                await client.ws.send(f"{client.name}:{client.sent}")
            except websockets.ConnectionClosed:
                return
            client.sent += 1
            if client.sent == 2:
                self._starting -= 1
                if self._starting == 0:
                    self.started.set()
            await asyncio.sleep(self.interval)

    async def _http(self, n):
        reader = writer = None
        while not self.stop_http.is_set():
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, self.port)
                writer.write(f"GET /hello HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                lines = head.decode().split("\r\n")
                status = int(lines[0].split()[1])
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                headers = {k.lower(): v for k, v in headers.items()}
                body = await asyncio.wait_for(
                    reader.readexactly(int(headers.get("content-length", "0"))), 10)
                if status != 200:
                    self.http_failures.append(f"client {n}: HTTP {status} {body!r}")
                else:
                    self.http_ok += 1
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                    reader = writer = None
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                    asyncio.LimitOverrunError, ValueError) as exc:
                self.http_failures.append(f"client {n}: {exc!r}")
                if writer is not None:
                    writer.close()
                reader = writer = None
            await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    def missing(self):
        """(client, sender, i) for every message not yet seen by a member of its room."""
        sent = {c.name: c.sent for c in self.clients}
        out = []
        for client in self.clients:
            for sender, count in sent.items():
                if self.room_of[sender] != client.room:
                    continue
                for i in range(count):
                    if (sender, i) not in client.seen:
                        out.append((client.name, sender, i))
        return out

    async def run(self, action, *, after_action=1.0):
        """Connects, starts the load, runs `action` once every client has sent a message,
        sends `after_action` seconds more, then waits until every message has arrived."""
        await self.connect()
        readers = [asyncio.create_task(self._read(c)) for c in self.clients]
        writers = [asyncio.create_task(self._write(c)) for c in self.clients]
        https = [asyncio.create_task(self._http(n)) for n in range(self.http_clients)]
        try:
            try:
                await asyncio.wait_for(self.started.wait(), 30)
            except asyncio.TimeoutError:
                pytest.fail("the load did not start: not every client could send")
            await action()
            await asyncio.sleep(after_action)
            self.stop_sending.set()
            await asyncio.gather(*writers)
            deadline = time.monotonic() + SETTLE
            while self.missing() and time.monotonic() < deadline:
                if any(c.closed for c in self.clients):
                    break
                await asyncio.sleep(0.1)
        finally:
            self.stop_sending.set()
            self.stop_http.set()
            await asyncio.gather(*https)
            self.closing = True
            for client in self.clients:
                await client.ws.close()
            await asyncio.gather(*readers, return_exceptions=True)
        # The clients closed them themselves only now.
        return self

    def report(self, what):
        sent = sum(c.sent for c in self.clients)
        duplicates = sum(c.duplicates for c in self.clients)
        delivered = sum(len(c.seen) for c in self.clients)
        print(f"{what}: {len(self.clients)} WebSockets sent {sent} messages, {delivered} "
              f"deliveries, {duplicates} duplicates; {self.http_ok} GET /hello ok, "
              f"{len(self.http_failures)} failed")

    def check(self, closed_before_end):
        assert not closed_before_end, (
            f"{len(closed_before_end)} WebSockets closed under load, e.g. "
            f"{closed_before_end[0].name}: {closed_before_end[0].closed!r}")
        missing = self.missing()
        assert not missing, f"{len(missing)} messages lost, e.g. (member, sender, i) {missing[:5]}"
        bad = [(c.name, b) for c in self.clients for b in c.bad_n]
        assert not bad, (f"{len(bad)} messages with n != i + 1 (state not resumed?), e.g. "
                         f"{bad[:5]}")
        assert not self.http_failures, (f"{len(self.http_failures)} GET /hello failed, e.g. "
                                        f"{self.http_failures[:5]}")
        assert self.http_ok > 0


def run_load(load, action, **kwargs):
    """Runs the load around `action`; returns the clients whose connection ended early."""
    asyncio.run(asyncio.wait_for(load.run(action, **kwargs), 240))
    return [client for client in load.clients if client.closed]


def start_workers(start_worker, n, ports=None):
    args = ["--drain-timeout", str(WORKER_DRAIN)]
    return [start_worker(admin=True, extra_args=args,
                         listen=f"127.0.0.1:{ports[i]}" if ports else "127.0.0.1:0")
            for i in range(n)]


def counter(proc, name):
    return metric(scrape_metrics(proc.admin_port), name)


def test_kill_9_one_of_three_workers_loses_nothing(start_worker, start_gateway):
    """200 WebSockets chatting in rooms of 10 and 50 HTTP clients looping GET /hello across
    three workers; kill -9 one of them. Its WebSockets move to the other two, resuming with
    their saved state; the GETs it was answering are retried; no client sees an error."""
    workers = start_workers(start_worker, 3)
    gateway = start_gateway(workers, admin=True)
    load = Load(gateway.port, rooms=20, per_room=10, http_clients=50)
    victim = workers[1]

    async def kill():
        await wait_for_instances(victim)
        victim.kill()

    closed = run_load(load, kill)
    load.report("kill -9")
    samples = scrape_metrics(gateway.admin_port)
    print(f"moved {metric(samples, MOVED):.0f}, replayed {metric(samples, REPLAYED):.0f}, "
          f"GET retried {metric(samples, RETRIED):.0f}")
    load.check(closed)
    assert metric(samples, MOVED) > 0, "no connection moved: the victim had none?"
    assert metric(samples, NO_WORKER) == 0


def test_rolling_restart_by_sigterm_loses_nothing(start_worker, start_gateway):
    """The same load while each of three workers in turn gets SIGTERM (it reports NOT_SERVING,
    hands its WebSockets back, finishes its HTTP, exits) and is started again on its
    address. Zero errors."""
    ports = [free_port() for _ in range(3)]
    workers = start_workers(start_worker, 3, ports)
    gateway = start_gateway(workers, admin=True)
    load = Load(gateway.port, rooms=10, per_room=10, http_clients=20, interval=0.2)

    async def roll():
        for i, port in enumerate(ports):
            code = await asyncio.to_thread(workers[i].terminate_and_wait, signal.SIGTERM,
                                           WORKER_DRAIN + 10)
            assert code == 0, f"worker {i} exited with {code} after SIGTERM"
            workers[i] = start_worker(admin=True, extra_args=["--drain-timeout", str(WORKER_DRAIN)],
                                      listen=f"127.0.0.1:{port}")
            await asyncio.to_thread(wait_for_metric, gateway.admin_port, WORKERS_READY,
                                    lambda v: v == 3, 10, "all three workers linked again")

    closed = run_load(load, roll)
    load.report("rolling restart")
    samples = scrape_metrics(gateway.admin_port)
    print(f"handed over {metric(samples, HANDOVERS):.0f}, moved {metric(samples, MOVED):.0f}, "
          f"GETs sent again {metric(samples, RETRIED):.0f}")
    load.check(closed)
    assert metric(samples, HANDOVERS) > 0


@pytest.mark.tsan
def test_frozen_worker_connections_move_after_the_heartbeat(start_worker, start_gateway):
    """SIGSTOP one of two workers under load: once its heartbeats are missed, its
    connections move to the other; nothing is lost, no socket closes. While the worker is
    frozen its members' room messages wait in their channels, so the load is sized to stay
    within a channel's capacity (100) for the time to give the link up: rooms of 4 at two
    messages a second each bring a member 8 a second; past the capacity the layer would skip
    the member (Channels semantics, counted), which is loss by design, not by the move."""
    workers = start_workers(start_worker, 2)
    gateway = start_gateway(workers, admin=True)
    load = Load(gateway.port, rooms=6, per_room=4, http_clients=10, interval=0.5)
    victim = workers[0]
    frozen_at = {}

    async def freeze():
        await wait_for_instances(victim)
        os.kill(victim.pid, signal.SIGSTOP)
        frozen_at["t"] = time.monotonic()
        await asyncio.to_thread(wait_for_metric, gateway.admin_port, MOVED, lambda v: v > 0,
                                HEARTBEAT_GIVE_UP + 10, "connections moved off the frozen worker")
        frozen_at["moved"] = time.monotonic() - frozen_at["t"]

    try:
        closed = run_load(load, freeze)
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    load.report("SIGSTOP")
    print(f"moved {frozen_at['moved']:.2f} s after the freeze")
    load.check(closed)


def test_worker_exits_within_its_drain_timeout(start_worker, start_gateway):
    """A worker whose HTTP response outlasts --drain-timeout (an endless SSE stream) still
    exits within it after SIGTERM: the stream is cut at the deadline, its WebSocket has
    moved to the other worker long before."""
    drain = 2.0
    busy = start_worker(admin=True, extra_args=["--drain-timeout", str(drain)])
    other_port = free_port()
    gateway = start_gateway([busy, f"127.0.0.1:{other_port}"], admin=True)

    async def main():
        # The stream goes to `busy`, the only worker yet; then the other starts.
        sse_reader, sse_writer = await asyncio.open_connection(HOST, gateway.port)
        sse_writer.write(f"GET /sse?count=100000&interval_ms=100 HTTP/1.1\r\nHost: {HOST}\r\n"
                         "\r\n".encode())
        await asyncio.wait_for(sse_reader.readuntil(b"data: 1"), 10)
        start_worker(admin=True, listen=f"127.0.0.1:{other_port}")
        await asyncio.to_thread(wait_for_metric, gateway.admin_port, WORKERS_READY,
                                lambda v: v == 2, 10, "both workers linked")
        clients = [await ws_connect(gateway.port, f"/ws/tally/exit{i}") for i in range(8)]
        for ws in clients:
            await ws.send("before")
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["n"] == 1
        busy.expected_exit = True
        busy.popen.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = await asyncio.to_thread(busy.popen.wait, drain + 10)
        took = time.monotonic() - signalled
        for ws in clients:  # all still open, on the other worker, counting on
            await ws.send("after")
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["n"] == 2
            await ws.close()
        sse_writer.close()
        return code, took

    code, took = asyncio.run(asyncio.wait_for(main(), 60))
    print(f"worker exited {took:.2f} s after SIGTERM (--drain-timeout {drain})")
    assert code == 0
    # The bound is the documented one; the margin is for a process exit on a busy machine.
    assert took < drain + 3.0, f"exit took {took:.2f} s, --drain-timeout is {drain} s"


def test_scaling_from_one_worker_to_three(start_worker, start_gateway):
    """The gateway lists three addresses, one worker runs; under load the other two start.
    Within 5 s of starting, new connections reach them."""
    ports = [free_port() for _ in range(3)]
    first = start_workers(start_worker, 1, ports[:1])[0]
    gateway = start_gateway([f"127.0.0.1:{p}" for p in ports], admin=True)
    load = Load(gateway.port, rooms=5, per_room=8, http_clients=10, interval=0.2)
    reached = {}

    async def scale():
        started = []
        for port in ports[1:]:
            started.append(start_worker(admin=True, listen=f"127.0.0.1:{port}"))
        t0 = time.monotonic()
        for worker in started:
            # HTTP requests are new connections: each new worker gets some within 5 s.
            await asyncio.to_thread(wait_for_metric, worker.admin_port, INSTANCES_STARTED,
                                    lambda v: v > 0, 5.0, "new connections on a new worker")
        reached["t"] = time.monotonic() - t0

    closed = run_load(load, scale)
    load.report("scale 1 → 3")
    print(f"new workers got connections within {reached['t']:.2f} s")
    load.check(closed)
    assert counter(first, INSTANCES_STARTED) > 0


def test_gateway_drained_under_load(start_worker, start_gateway):
    """SIGTERM the gateway under load: every HTTP response it started is complete (200), the
    last on each connection saying connection: close, and the WebSockets stay open for the
    drain timeout, then get 1001. An HTTP client whose idle keep-alive connection is closed,
    or that finds the listener gone, stops there (behind a load balancer it would go to
    another gateway): that is not an error, a cut or failed response would be."""
    workers = start_workers(start_worker, 2)
    drain = 3
    gateway = start_gateway(workers, admin=True, extra_args=["--drain-timeout", str(drain)])
    load = Load(gateway.port, rooms=5, per_room=4, http_clients=0)
    results = {"ok": 0, "closed": 0, "told_close": 0, "errors": []}

    async def http_client(n):
        try:
            reader, writer = await asyncio.open_connection(HOST, gateway.port)
        except OSError:
            return
        try:
            while True:
                writer.write(f"GET /hello HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        results["errors"].append(f"client {n}: cut head {exc.partial!r}")
                    else:
                        results["closed"] += 1  # closed while idle: the keep-alive race
                    return
                except ConnectionResetError:
                    results["closed"] += 1
                    return
                lines = head.decode().split("\r\n")
                headers = {k.lower(): v for k, v in
                           (line.split(": ", 1) for line in lines[1:] if ": " in line)}
                body = await asyncio.wait_for(
                    reader.readexactly(int(headers.get("content-length", "0"))), 10)
                if not lines[0].startswith("HTTP/1.1 200") or body != b"Hello, world":
                    results["errors"].append(f"client {n}: {lines[0]} {body!r}")
                    return
                results["ok"] += 1
                if headers.get("connection", "").lower() == "close":
                    results["told_close"] += 1
                    return
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
            results["errors"].append(f"client {n}: {exc!r}")
        finally:
            writer.close()

    async def main():
        await load.connect()
        readers = [asyncio.create_task(load._read(c)) for c in load.clients]
        https = [asyncio.create_task(http_client(n)) for n in range(20)]
        await asyncio.sleep(0.5)
        gateway.popen.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*https), 30)
        await asyncio.wait_for(asyncio.gather(*readers), drain + 10)
        return time.monotonic() - signalled

    took = asyncio.run(asyncio.wait_for(main(), 60))
    gateway.expected_exit = True
    codes = {c.ws.close_code for c in load.clients}
    print(f"gateway drain: {results['ok']} GET ok ({results['told_close']} told to close, "
          f"{results['closed']} idle connections closed), {len(results['errors'])} errors; "
          f"WebSockets closed with {codes} {took:.2f} s after SIGTERM")
    assert not results["errors"], results["errors"][:5]
    assert results["ok"] > 0
    assert codes == {1001}
    assert took >= drain, f"WebSockets closed {took:.2f} s after SIGTERM, before the drain timeout"
    assert gateway.popen.wait(10) == 0


async def wait_for_instances(worker, timeout=10.0):
    """Until the worker runs some WebSocket instances (so that the failure moves some)."""
    await asyncio.to_thread(wait_for_metric, worker.admin_port, "sluice_worker_instances",
                            lambda v: v > 0, timeout, "instances on the worker")
