"""The channel layer on a real redis-server: two gateways sharing it, and Django's
channels_redis (the Debian python3-channels-redis package) talking to sluice both ways.

Each test starts its own redis-server on a free port (`--save '' --appendonly no`) and stops
it after; tests are skipped when redis-server or channels_redis is not installed.
"""

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import time

import pytest

from e2e_helpers import free_port, recv, run, wait_for_metric, wait_until, ws_connect

channels_redis = pytest.importorskip("channels_redis.core")

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed")


def redis_ping(port) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A private redis-server on `port`, without persistence."""

    def __init__(self, port, directory):
        self.port = port
        self.directory = directory
        self.proc = None
        self.log = None

    def start(self):
        self.log = open(self.directory / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: redis_ping(self.port) or self.proc.poll() is not None, 10,
                   "redis-server up")
        assert self.proc.poll() is None, (self.directory / "redis.log").read_text()

    def stop(self, sig=None):
        if self.proc and self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        if self.log:
            self.log.close()
            self.log = None


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_port(redis_server):
    return redis_server.port


def redis_stack(start_worker, start_gateway, redis_port, gateways=1):
    workers = [start_worker(), start_worker()]
    layer = f"redis://127.0.0.1:{redis_port}/0"
    gws = [start_gateway(workers, admin=True, extra_args=["--layer", layer])
           for _ in range(gateways)]
    for gw in gws:
        wait_for_metric(gw.admin_port, "sluice_gateway_workers_ready", lambda v: v == 2,
                        what="both workers linked")
        wait_for_metric(gw.admin_port, "sluice_gateway_layer_connected", lambda v: v == 1,
                        what="the layer connected to redis")
    return workers, gws


def django_layer(port):
    return channels_redis.RedisChannelLayer(hosts=[("127.0.0.1", port)])


def test_two_gateways_200_clients_every_message_in_order_per_sender(
        start_worker, start_gateway, redis_port):
    workers, gateways = redis_stack(start_worker, start_gateway, redis_port, gateways=2)
    clients, senders, per_sender = 200, 10, 5
    total = senders * per_sender

    async def main():
        sockets = []
        for i in range(clients):
            port = gateways[i % 2].port
            sockets.append(await ws_connect(port, "/ws/chat/big"))
        # Every client joined the group before its handshake completed; now senders on both
        # gateways talk at once.
        async def talk(i):
            for j in range(per_sender):
                await sockets[i].send(f"{i}:{j}")
        await asyncio.gather(*(talk(i) for i in range(senders)))

        async def listen(ws):
            got = [await recv(ws, timeout=20) for _ in range(total)]
            by_sender = {}
            for text in got:
                sender, n = text.split(":")
                by_sender.setdefault(sender, []).append(int(n))
            return by_sender

        results = await asyncio.gather(*(listen(ws) for ws in sockets))
        for by_sender in results:
            assert sorted(by_sender) == sorted(str(i) for i in range(senders))
            for sender, ns in by_sender.items():
                assert ns == list(range(per_sender)), f"sender {sender}: {ns}"
        for ws in sockets:
            await ws.close()

    run(main(), timeout=120)


def test_django_group_send_reaches_sluice_clients(start_worker, start_gateway, redis_port):
    _, (gateway,) = redis_stack(start_worker, start_gateway, redis_port)

    async def main():
        ws = await ws_connect(gateway.port, "/ws/chat/interop")
        layer = django_layer(redis_port)
        await layer.group_send("chat_interop", {"type": "chat.message", "text": "from django"})
        assert await recv(ws) == "from django"
        await ws.close()
        await layer.flush()

    run(main())


def test_sluice_consumer_sends_to_a_django_channel(start_worker, start_gateway, redis_port):
    _, (gateway,) = redis_stack(start_worker, start_gateway, redis_port)

    async def main():
        layer = django_layer(redis_port)
        channel = await layer.new_channel()
        probe = await ws_connect(gateway.port, "/ws/layer")
        json.loads(await recv(probe))  # hello
        await probe.send(json.dumps({"op": "send", "channel": channel,
                                     "message": {"type": "test.message", "text": "to django"}}))
        assert json.loads(await recv(probe))["result"] == "ok"
        message = await asyncio.wait_for(layer.receive(channel), 5)
        assert message == {"type": "test.message", "text": "to django"}
        await probe.close()

    run(main())


def test_django_sends_a_background_task_and_gets_the_answer(start_worker, start_gateway,
                                                            redis_port):
    _, (gateway,) = redis_stack(start_worker, start_gateway, redis_port)

    async def main():
        layer = django_layer(redis_port)
        reply = await layer.new_channel()
        await layer.send("tasks", {"type": "task.run", "body": "django", "reply_channel": reply})
        message = await asyncio.wait_for(layer.receive(reply), 10)
        assert message["type"] == "task.done" and message["result"] == "OGNAJD"

    run(main())


def test_redis_down_fails_fast_and_the_gateway_reconnects(start_worker, start_gateway,
                                                          redis_server):
    _, (gateway,) = redis_stack(start_worker, start_gateway, redis_server.port)
    errors = 'sluice_gateway_layer_errors_total{reason="unavailable"}'

    async def main():
        probe = await ws_connect(gateway.port, "/ws/layer")
        json.loads(await recv(probe))
        redis_server.stop(signal.SIGKILL)
        wait_for_metric(gateway.admin_port, "sluice_gateway_layer_connected", lambda v: v == 0,
                        what="the gateway noticed redis is gone")
        started = time.monotonic()
        await probe.send(json.dumps({"op": "group_add", "group": "g"}))
        assert json.loads(await recv(probe))["result"] == "LayerUnavailable"
        assert time.monotonic() - started < 1.0, "layer calls fail fast while redis is down"
        wait_for_metric(gateway.admin_port, errors, lambda v: v >= 1, what="counted")
        redis_server.start()  # the same port, empty
        wait_for_metric(gateway.admin_port, "sluice_gateway_layer_connected", lambda v: v == 1,
                        timeout=15, what="reconnected with backoff (at most 5 s apart)")
        await probe.close()
        # Works again end to end.
        ws = await ws_connect(gateway.port, "/ws/chat/back")
        await ws.send("again")
        assert await recv(ws) == "again"
        await ws.close()

    run(main())
    log = gateway.stderr_path.read_text()
    assert "lost redis" in log and "connected to redis" in log, log[-2000:]
