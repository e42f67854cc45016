"""
Settings of the demo project, from the environment:

- ``DATABASE_URL``: any URL dj-database-url understands; default an SQLite file here.
- ``REDIS_URL``: unset, the in-memory channel layer (one process); set, channels-redis
  (events cross processes: the shell, management commands, several servers).
- ``REDIS_LAYER``: ``pubsub`` picks channels-redis's pub/sub layer (default: its core
  layer).
- ``ALLOWED_HOSTS``: comma-separated; default localhost names.
- ``DJANGO_DEBUG``: ``1`` turns debug mode on (``scripts/demo`` does); off by default, so
  an error is never answered with Django's technical page (it lists the settings).
- ``DJANGO_SECRET_KEY``: default a random key kept in ``.secret_key`` here, made on first
  use (every process on this machine shares it).
- ``PAINTBRUSH_SETTINGS``: a JSON object merged into ``PAINTBRUSH`` (the tests lower
  limits in a server process with it: ``{"MAX_SOCKETS_PER_CLIENT": 3}``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"


def _secret_key() -> str:
    path = BASE_DIR / ".secret_key"
    if not path.exists():
        import secrets

        try:
            with path.open("x") as file:  # "x": two processes starting at once make one key
                file.write(secrets.token_urlsafe(50))
        except FileExistsError:
            pass
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _secret_key()
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]

INSTALLED_APPS = [
    "daphne",  # runserver serves the ASGI application (HTTP and WebSocket)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",  # the OpenAPI schema of /api/ (docs/contracts.md)
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from here, not from a CDN
    "channels",
    "paintbrush",
    "project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files under any server (runserver serves them only in debug mode).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _test_sqlite_path() -> str:
    return str(Path(tempfile.gettempdir()) / f"paintbrush-test-{os.getpid()}.sqlite3")


def _database() -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL")
    if url:
        database = dict(dj_database_url.parse(url, conn_max_age=0))
        # Named explicitly: the live-server tests' server process reads it from here.
        database["TEST"] = {"NAME": f"test_{database['NAME']}"}
        return database
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
        # IMMEDIATE: a writing transaction takes SQLite's write lock at BEGIN, so two
        # writers of one row serialise instead of failing with "database is locked".
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        # A file, not :memory:, so that the live-server tests' server process shares it;
        # one per test run (the environment carries it to subprocesses), so that two runs
        # on one machine never share it.
        "TEST": {"NAME": os.environ.setdefault("PAINTBRUSH_TEST_SQLITE", _test_sqlite_path())},
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            # REDIS_LAYER=pubsub: channels-redis's pub/sub layer (docs/deploy.md).
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"
            if os.environ.get("REDIS_LAYER") == "pubsub"
            else "channels_redis.core.RedisChannelLayer",
            # Each server process listens on one hub channel (paintbrush.hub); give it
            # room for bursts rather than the default 100 messages.
            "CONFIG": {
                # socket_timeout above channels-redis's 5 s blocking receive, so that a
                # quiet hub channel does not time out (paintbrush.W002).
                "hosts": [{"address": os.environ["REDIS_URL"], "socket_timeout": 30}],
                "capacity": 10_000,
                # Lets the tests isolate runs that share one Redis server.
                "prefix": os.environ.get("PAINTBRUSH_TEST_LAYER_PREFIX", "asgi"),
            },
        }
    }
else:
    # Room for bursts: layers drop silently past `capacity` messages per channel.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10_000}}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_SCHEMA_CLASS": "paintbrush.contracts.openapi.AutoSchema",
}

# The OpenAPI schema at /api/schema/, its UIs at /api/docs/ and /api/redoc/ (docs/contracts.md).
SPECTACULAR_SETTINGS = {
    "TITLE": "Paintbrush demo API",
    "DESCRIPTION": (
        "The REST side of the Paintbrush wire contract (docs/protocol.md, section 1). "
        "The WebSocket side is described by `python manage.py paintbrush_asyncapi`."
    ),
    "VERSION": "1.1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response components (TodoRequest, Todo): read-only fields
    # appear only where the server sends them, which makes generated clients exact.
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/",
    # The UIs' JavaScript and CSS from drf-spectacular-sidecar, so they work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

PAINTBRUSH = {
    "MAX_FRAME_BYTES": 64 * 1024,
    "DOC_COALESCE_SECONDS": 0.05,
}
if os.environ.get("PAINTBRUSH_SETTINGS"):
    _overrides = json.loads(os.environ["PAINTBRUSH_SETTINGS"])
    if not isinstance(_overrides, dict):
        raise ImproperlyConfigured(f"PAINTBRUSH_SETTINGS must be a JSON object, not {_overrides!r}")
    PAINTBRUSH.update(_overrides)  # values are checked by the paintbrush.E... system checks

# Role documents travel as one message each; Daphne (runserver) refuses to send, or
# receive, a message over 1 MiB by default. Raised deliberately so that documents up to
# 32 MiB arrive in development too; uvicorn (scripts/serve) has no limit on sending,
# and its --ws-max-size bounds what clients may send.
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = 32 * 1024 * 1024
DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = 32 * 1024 * 1024

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves STATIC_ROOT (filled by collectstatic, which scripts/serve runs) and,
# where collectstatic has not run (a fresh checkout, the tests), the apps' own static
# directories. It warns about a missing STATIC_ROOT, so there always is one.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(exist_ok=True)


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # uvicorn logs a client's invalid UTF-8 as an ERROR with a traceback (paintbrush.logfilters).
    "filters": {"client_protocol_errors": {"()": "paintbrush.logfilters.ClientProtocolErrors"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "paintbrush": {"handlers": ["console"], "level": "INFO"},
        # A filter only: uvicorn's own handlers and level stay as it configured them.
        "uvicorn.error": {"filters": ["client_protocol_errors"]},
    },
}
