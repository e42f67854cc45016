"""
Settings shared by the two Django peers (``relay``, ``dcrf``), from the environment:

- ``BENCH_DB``: the SQLite file (the benchmark puts it on a tmpfs);
- ``BENCH_LAYER``: ``inmemory`` (default, stock capacity), ``redis`` or ``redis-pubsub``,
  with ``REDIS_URL``.

The middleware and REST settings mirror the demo project's, so that a write costs the
same Django work in every system.
"""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = "bench"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

BASE_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "channels",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("BENCH_DB", "/dev/shm/bench.sqlite3")}
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}


def channel_layers() -> dict[str, Any]:
    """The channel layer named by ``BENCH_LAYER``: stock configuration otherwise."""
    layer = os.environ.get("BENCH_LAYER", "inmemory")
    if layer == "inmemory":
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    backend = {
        "redis": "channels_redis.core.RedisChannelLayer",
        "redis-pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    }[layer]
    return {"default": {"BACKEND": backend, "CONFIG": {"hosts": [os.environ["REDIS_URL"]]}}}


CHANNEL_LAYERS = channel_layers()
LOGGING = {"version": 1, "disable_existing_loggers": False}
