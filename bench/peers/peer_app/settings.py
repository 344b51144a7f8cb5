"""Django settings of the benchmark's peer: a Channels app with no database, sessions or
middleware, so the figures measure the interface server and Channels, not an ORM."""

SECRET_KEY = "sluice-bench-peer-not-a-secret"  # nothing here is signed or stored
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True
ASGI_APPLICATION = "peer_app.asgi.application"
# In memory, as the brief for a single-process peer asks: every consumer still gets a
# channel name and listens on it, as it does in a Channels deployment.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
