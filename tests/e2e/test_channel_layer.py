"""The channel layer end to end: one gateway on the in-memory layer, two demo workers.

Bounds come from docs/channel-layer.md and docs/backpressure.md: a channel holds
`--layer-capacity` messages, a connection's worker-bound window is 16 events (the worker's
--window-events default), a message is at most 1 MiB encoded.
"""

import asyncio
import json
import os
import time

import pytest

from e2e_helpers import (
    http_request,
    metric,
    recv,
    run,
    scrape_metrics,
    wait_for_metric,
    wait_until,
    ws_connect,
)

MiB = 1024 * 1024
WORKER_WINDOW_EVENTS = 16  # common/protocol.h kDefaultWindowEvents
LAYER_ERRORS = "sluice_gateway_layer_errors_total"
BACKGROUND = "sluice_gateway_background_deliveries_total"


def two_workers(start_worker, start_gateway, gateway_args=(), worker_admin=True,
                worker_args=()):
    workers = [start_worker(admin=worker_admin, extra_args=list(worker_args))
               for _ in range(2)]
    gateway = start_gateway(workers, admin=True, extra_args=list(gateway_args))
    wait_for_metric(gateway.admin_port, "sluice_gateway_workers_ready", lambda v: v == 2,
                    what="both workers linked")
    return workers, gateway


class Probe:
    """A /ws/layer connection: the demo's channel layer driven from the test."""

    def __init__(self, ws, hello):
        self.ws = ws
        self.channel = hello["channel"]
        self.pid = hello["pid"]

    @classmethod
    async def open(cls, port):
        ws = await ws_connect(port, "/ws/layer")
        return cls(ws, json.loads(await recv(ws)))

    async def call(self, op, timeout=5.0, **fields):
        await self.ws.send(json.dumps({"op": op, **fields}))
        while True:
            answer = json.loads(await recv(self.ws, timeout))
            if "result" in answer:
                return answer["result"]

    async def got(self, timeout=5.0):
        while True:
            answer = json.loads(await recv(self.ws, timeout))
            if "got" in answer:
                return answer["got"]


async def probes_on_both_workers(port, pids, limit=20):
    """Opens probes until one is on each worker (admission rotates among equals)."""
    by_pid = {}
    extra = []
    for _ in range(limit):
        probe = await Probe.open(port)
        if probe.pid in by_pid:
            extra.append(probe)
        else:
            by_pid[probe.pid] = probe
        if set(by_pid) == set(pids):
            return by_pid, extra
    raise AssertionError(f"probes reached workers {sorted(by_pid)}, not all of {pids}")


@pytest.mark.tsan
def test_chat_clients_on_two_workers_all_get_every_message(start_worker, start_gateway):
    workers, gateway = two_workers(start_worker, start_gateway)
    clients = 8

    async def main():
        sockets = [await ws_connect(gateway.port, "/ws/chat/lobby") for _ in range(clients)]
        # A second room hears nothing of the first.
        other = await ws_connect(gateway.port, "/ws/chat/other")
        for i, ws in enumerate(sockets):
            await ws.send(f"message {i}")
        want = sorted(f"message {i}" for i in range(clients))
        for ws in sockets:
            got = [await recv(ws) for _ in range(clients)]
            assert sorted(got) == want
        await other.send("alone")
        assert await recv(other) == "alone"
        for ws in sockets + [other]:
            await ws.close()

    run(main())
    # Both workers served chat clients: group messages crossed between them.
    for worker in workers:
        started = metric(scrape_metrics(worker.admin_port), "sluice_worker_instances_started_total")
        assert started >= 2, f"{worker.name} ran {started} instances; the clients were not spread"
    samples = scrape_metrics(gateway.admin_port)
    assert metric(samples, "sluice_gateway_layer_group_sends_total") >= clients + 1


CAPACITY = 10


@pytest.mark.parametrize("capacity_args", [
    ["--layer-capacity", str(CAPACITY)],
    # A rule by name pattern overrides the default for the channels it matches.
    ["--layer-capacity", "1000", "--channel-capacity", "other.*=3",
     "--channel-capacity", f"specific.*={CAPACITY}"],
], ids=["default", "by-pattern"])
def test_channel_full_when_its_consumer_stops_reading(start_worker, start_gateway,
                                                      capacity_args):
    capacity = CAPACITY
    # The blocked consumer is cancelled 1 s after its client leaves (--close-timeout), so
    # the workers stop promptly at teardown.
    workers, gateway = two_workers(start_worker, start_gateway, capacity_args,
                                   worker_admin=False, worker_args=["--close-timeout", "1"])

    async def main():
        reader = await Probe.open(gateway.port)
        sender = await Probe.open(gateway.port)
        assert await reader.call("group_add", group="watchers") == "ok"
        # The reader's handler blocks: its consumer takes no more events, so the worker's
        # window (16 events) fills, the gateway stops pulling, and the channel fills.
        assert await sender.call("send", channel=reader.channel,
                                 message={"type": "test.block"}) == "ok"
        accepted = 0
        limit = capacity + WORKER_WINDOW_EVENTS + 2  # + the held message + the blocked one
        while True:
            result = await sender.call("send", channel=reader.channel,
                                       message={"type": "test.message", "n": accepted})
            if result == "ChannelFull":
                break
            assert result == "ok"
            accepted += 1
            assert accepted <= limit, f"{accepted} messages accepted; the bound is {limit}"
        assert accepted >= capacity, f"ChannelFull after {accepted} < capacity {capacity}"
        # A group send skips the full member and says so in a counter, not to the sender.
        # The counter moves before the send's answer leaves the gateway, so it is read right
        # after. Credit the worker granted before its consumer blocked may still arrive and
        # let the gateway pull a message, leaving room for the group's: then fill the channel
        # again and retry, at most once per event of the worker's window.
        skipped = "sluice_gateway_layer_group_skipped_total"
        for _ in range(WORKER_WINDOW_EVENTS + 1):
            before = metric(scrape_metrics(gateway.admin_port), skipped)
            assert await sender.call("group_send", group="watchers",
                                     message={"type": "test.message"}) == "ok"
            if metric(scrape_metrics(gateway.admin_port), skipped) >= before + 1:
                break
            for _ in range(limit):
                if await sender.call("send", channel=reader.channel,
                                     message={"type": "test.message"}) == "ChannelFull":
                    break
        else:
            raise AssertionError("no group send to the full member was counted as skipped")
        await reader.ws.close()
        await sender.ws.close()

    run(main())
    samples = scrape_metrics(gateway.admin_port)
    assert metric(samples, LAYER_ERRORS + '{reason="channel_full"}') >= 1


def test_message_limit_is_one_mib(start_worker, start_gateway):
    workers, gateway = two_workers(start_worker, start_gateway, worker_admin=False)

    async def main():
        probe = await Probe.open(gateway.port)
        # Over the limit: refused before it leaves the worker.
        assert await probe.call("send", channel=probe.channel, message={"type": "test.message"},
                                pad=MiB) == "MessageTooLarge"
        # Just under it: delivered whole, to itself.
        pad = MiB - 1024
        assert await probe.call("send", channel=probe.channel, message={"type": "test.message"},
                                pad=pad) == "ok"
        got = await probe.got(timeout=10)
        assert got["type"] == "test.message" and len(got["pad"]) == pad
        # Not a message: no string type.
        assert await probe.call("send", channel=probe.channel,
                                message={"text": "no type"}) == "invalid_argument"
        # A bad channel name is the gateway's to refuse.
        assert await probe.call("send", channel="bad name!", message={"type": "x"}) == \
            "InvalidLayerCall"
        await probe.ws.close()

    run(main())


def test_post_tasks_returns_the_background_result(start_worker, start_gateway):
    workers, gateway = two_workers(start_worker, start_gateway, worker_admin=False)
    for body in (b"hello world", b"sluice", b""):
        resp = http_request(gateway.port, "POST", "/tasks", body=body)
        assert resp.status == 200, resp.body
        assert resp.body == body[::-1].upper()
    wait_for_metric(gateway.admin_port, BACKGROUND + '{outcome="done"}', lambda v: v == 3,
                    what="three deliveries acknowledged")
    samples = scrape_metrics(gateway.admin_port)
    assert metric(samples, "sluice_gateway_background_in_flight") == 0
    assert metric(samples, BACKGROUND + '{outcome="redelivered"}') == 0


@pytest.mark.tsan
def test_background_task_survives_kill_9_of_its_worker(start_worker, start_gateway, tmp_path,
                                                        monkeypatch):
    signal_dir = tmp_path / "signals"
    signal_dir.mkdir()
    monkeypatch.setenv("SLUICE_DEMO_SIGNAL_DIR", str(signal_dir))
    workers, gateway = two_workers(start_worker, start_gateway, worker_admin=False)
    by_pid = {w.pid: w for w in workers}

    def taken():
        return sorted(p.name for p in signal_dir.glob("job.taken.*"))

    async def main():
        probes, extra = await probes_on_both_workers(gateway.port, list(by_pid))
        for probe in probes.values():
            assert await probe.call("group_add", group="results") == "ok"
        any_probe = next(iter(probes.values()))
        task = {"type": "task.run", "body": "wait:job", "reply_group": "results"}
        assert await any_probe.call("send", channel="tasks", message=task) == "ok"
        # The task is in flight on one worker: it waits for the signal file.
        first = wait_until(taken, 10, "a worker took the task")
        assert len(first) == 1
        victim = by_pid[int(first[0].rsplit(".", 1)[1])]
        victim.kill()
        # The gateway gives it to the other worker, with the same delivery id.
        both = wait_until(lambda: len(taken()) == 2 and taken(), 10,
                          "the task delivered again to the surviving worker")
        ids = {(signal_dir / name).read_text() for name in both}
        assert len(ids) == 1, f"delivery ids differ: {ids}"
        (signal_dir / "job").write_text("go")
        survivor = next(p for pid, p in probes.items() if pid != victim.pid)
        done = await survivor.got(timeout=10)
        assert done["type"] == "task.done" and done["result"] == "BOJ:TIAW"
        assert done["delivery_id"] == ids.pop()
        for probe in [survivor] + [p for p in extra if p.pid != victim.pid]:
            await probe.ws.close()

    run(main())
    samples = scrape_metrics(gateway.admin_port)
    assert metric(samples, BACKGROUND + '{outcome="redelivered"}') >= 1
    assert metric(samples, BACKGROUND + '{outcome="done"}') == 1
    wait_for_metric(gateway.admin_port, "sluice_gateway_background_in_flight", lambda v: v == 0,
                    what="nothing in flight once acknowledged")


def test_without_a_layer_calls_fail_as_unavailable(start_worker, start_gateway):
    worker = start_worker()
    gateway = start_gateway([worker], admin=True, extra_args=["--layer", "none"])
    resp = http_request(gateway.port, "POST", "/tasks", body=b"x")
    assert resp.status == 503 and b"unavailable" in resp.body, resp.body

    async def main():
        probe = await Probe.open(gateway.port)
        assert probe.channel == ""
        assert await probe.call("group_add", group="g") == "LayerUnavailable"
        await probe.ws.close()

    run(main())
    # No layer, no layer metrics.
    assert not any(name.startswith("sluice_gateway_layer_")
                   for name in scrape_metrics(gateway.admin_port))
