"""ASGI entry point of the benchmark's peer: `uvicorn peer_app.asgi:application` or
`daphne peer_app.asgi:application`, with bench/peers on the Python path."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_app.settings")

import django  # noqa: E402

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from peer_app.consumers import Echo, Hello, NotFound  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": URLRouter([path("hello", Hello.as_asgi()), re_path(r"", NotFound.as_asgi())]),
        "websocket": URLRouter([path("ws/echo", Echo.as_asgi())]),
    }
)
