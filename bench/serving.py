"""
What the benchmarks that serve the demo with ``scripts/serve`` share: a free loopback
port, a process's CPU time, and the demo's environment for one throwaway database.

    env = demo_env(tmp)                        # SQLite in tmp, in-memory layer, no socket cap
    port = free_port()
    seconds = cpu_seconds(server.pid)          # user + system, all threads
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

__all__ = ["CLK_TCK", "cpu_seconds", "demo_env", "free_port"]

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` (all its threads), in seconds (10 ms ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def demo_env(directory: str | Path) -> dict[str, str]:
    """The demo's environment with its SQLite file in ``directory``, one process (no
    ``REDIS_URL``), and no cap on sockets per client: one address opens them all."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{directory}/db.sqlite3",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PYTHON": sys.executable,
        "PAINTBRUSH_SETTINGS": json.dumps({"MAX_SOCKETS_PER_CLIENT": 100_000}),
    }
    env.pop("REDIS_URL", None)
    return env
