"""Settings of the djangochannelsrestframework peer (see ``bench.peers.base_settings``)."""

from __future__ import annotations

from bench.peers.base_settings import *  # noqa: F403
from bench.peers.base_settings import BASE_APPS

INSTALLED_APPS = [*BASE_APPS, "bench.peers.dcrf"]
ROOT_URLCONF = "bench.peers.dcrf.urls"
ASGI_APPLICATION = "bench.peers.dcrf.asgi.application"
