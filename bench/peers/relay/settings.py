"""Settings of the stock Channels relay (see ``bench.peers.base_settings``)."""

from __future__ import annotations

from bench.peers.base_settings import *  # noqa: F403
from bench.peers.base_settings import BASE_APPS

INSTALLED_APPS = [*BASE_APPS, "bench.peers.relay"]
ROOT_URLCONF = "bench.peers.relay.urls"
ASGI_APPLICATION = "bench.peers.relay.asgi.application"
