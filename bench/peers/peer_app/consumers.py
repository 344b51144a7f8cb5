"""The same two routes the sluice demo serves, written as Channels consumers."""

from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer


def _headers(body):
    # Content-Length as sluice and the baseline send it; without it the servers chunk.
    return [
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", str(len(body)).encode()),
    ]


class Hello(AsyncHttpConsumer):
    async def handle(self, body):
        await self.send_response(200, b"Hello, world", headers=_headers(b"Hello, world"))


class NotFound(AsyncHttpConsumer):
    async def handle(self, body):
        await self.send_response(404, b"Not found", headers=_headers(b"Not found"))


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        if text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)
