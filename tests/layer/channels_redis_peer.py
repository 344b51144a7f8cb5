"""A channels_redis 4.x process for the layer's interop tests (tests/layer/redis_layer_test.cc).

    channels_redis_peer.py send PORT CHANNEL MESSAGE
    channels_redis_peer.py group_send PORT GROUP MESSAGE
    channels_redis_peer.py receive PORT [--channel NAME] [--group NAME]

MESSAGE is JSON; {"$bytes": "<hex>"} stands for Python bytes, both ways. `receive` prints the
channel it listens on (new_channel() unless --channel), joins --group, then prints the first
message it receives and exits; it gives up after 10 s (exit status 1).
"""
import argparse
import asyncio
import json

from channels_redis.core import RedisChannelLayer


def decode(value):
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def encode(value):
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["send", "group_send", "receive"])
    parser.add_argument("port", type=int)
    parser.add_argument("target", nargs="?")
    parser.add_argument("message", nargs="?")
    parser.add_argument("--channel")
    parser.add_argument("--group")
    args = parser.parse_args()
    layer = RedisChannelLayer(hosts=[("127.0.0.1", args.port)])
    try:
        if args.mode == "send":
            await layer.send(args.target, decode(json.loads(args.message)))
        elif args.mode == "group_send":
            await layer.group_send(args.target, decode(json.loads(args.message)))
        else:
            channel = args.channel or await layer.new_channel()
            if args.group:
                await layer.group_add(args.group, channel)
            print(channel, flush=True)
            message = await asyncio.wait_for(layer.receive(channel), 10)
            print(json.dumps(encode(message)), flush=True)
    finally:
        await layer.close_pools()


asyncio.run(main())
