"""
The demo project's settings, with the channel layer named by ``BENCH_LAYER``
(``redis-pubsub``: channels-redis's ``RedisPubSubChannelLayer`` at ``REDIS_URL``).

The project itself configures ``RedisChannelLayer`` whenever ``REDIS_URL`` is set; the
benchmark uses this module only to compare the publish/subscribe layer with it.
"""

from __future__ import annotations

import os

from project.settings import *  # noqa: F403

if os.environ.get("BENCH_LAYER") == "redis-pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # As the project configures RedisChannelLayer (paintbrush.W002).
            "CONFIG": {"hosts": [{"address": os.environ["REDIS_URL"], "socket_timeout": 30}]},
        }
    }
