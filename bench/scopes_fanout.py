"""
Fan-out by scope (issue 14, point 6): S = 1,000 sockets in R rooms of S / R, against
one server process (``scripts/serve``: uvicorn, SQLite, in-memory layer).

    python bench/scopes_fanout.py                       # R = 100 and R = 1, W = 200 writes
    python bench/scopes_fanout.py --sockets 1000 --rooms 100 10 1 --writes 200

For each shape, W messages are posted over REST to one room, one after another, and
each socket counts the events it receives. Printed per shape:

- deliveries per write (must equal the room's size: no socket of another room hears it);
- the server's CPU per write (``/proc/<pid>/stat`` over the W writes and their fan-out);
- POST p50.

Also printed: the same W writes with only that room's sockets connected (R = 100 of 10
against one room of 10 alone: idle sockets of other rooms must cost nothing per write),
and the whole-resource subscription of before scopes (every socket on ``todos``, W todos
created: every write reaches every socket).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.typing import Origin

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from bench.serving import cpu_seconds, demo_env, free_port  # noqa: E402

_SETUP = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from project.demo.models import Room
user = get_user_model().objects.create_user("bench")
for i in range({rooms}):
    Room.objects.create(name=f"room-{{i}}", owner=user)
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.save()
print("SESSION", session.session_key, list(Room.objects.order_by("name").values_list("pk", flat=True)))
"""


class Bench:
    def __init__(self, rooms: int, env: dict[str, str]) -> None:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=HERE, env=env, check=True)
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", _SETUP.format(rooms=rooms)],
            cwd=HERE,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        line = next(line for line in out.splitlines() if line.startswith("SESSION"))
        _, self.session, rooms_text = line.split(" ", 2)
        self.rooms: list[int] = json.loads(rooms_text)
        self.csrf = secrets.token_hex(16)
        self.port = free_port()
        self.server = subprocess.Popen(
            ["bash", "scripts/serve", f"127.0.0.1:{self.port}"],
            cwd=HERE,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/todos", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.server.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)

    @property
    def cookie(self) -> str:
        return f"sessionid={self.session}; csrftoken={self.csrf}"

    def post(self, path: str, body: dict[str, object]) -> float:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Cookie": self.cookie, "X-CSRFToken": self.csrf},
        )
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        return time.perf_counter() - start

    async def run(self, sockets: int, rooms: int, writes: int, whole: bool = False) -> dict[str, float]:
        """``sockets`` sockets spread over the first ``rooms`` rooms (or all on todos when
        ``whole``); ``writes`` writes to the first room (or todos)."""
        counts = [0] * sockets
        opened = asyncio.Event()
        ready = 0
        stop = asyncio.Event()

        async def client(index: int) -> None:
            nonlocal ready
            async with connect(
                f"ws://127.0.0.1:{self.port}/ws",
                origin=Origin(f"http://127.0.0.1:{self.port}"),
                additional_headers={"Cookie": self.cookie},
                max_size=None,
                ping_interval=None,
                open_timeout=60,
            ) as ws:
                opendoc: dict[str, object] = {"action": "opendoc", "resource": "todos"}
                if not whole:
                    opendoc = {
                        "action": "opendoc",
                        "resource": "messages",
                        "where": {"room": self.rooms[index % rooms]},
                    }
                await ws.send(json.dumps(opendoc))
                while json.loads(await ws.recv()).get("type") != "opened":
                    pass
                ready += 1
                if ready == sockets:
                    opened.set()
                receiving = asyncio.ensure_future(ws.recv())
                stopping = asyncio.ensure_future(stop.wait())
                while True:
                    done, _ = await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if stopping in done:
                        receiving.cancel()
                        return
                    if json.loads(receiving.result()).get("action") == "create":
                        counts[index] += 1
                    receiving = asyncio.ensure_future(ws.recv())

        tasks = [asyncio.ensure_future(client(i)) for i in range(sockets)]
        await asyncio.wait_for(opened.wait(), 120)
        expected_each = sockets if whole else len([i for i in range(sockets) if i % rooms == 0])
        cpu = cpu_seconds(self.server.pid)
        posts = []
        for n in range(writes):
            if whole:
                posts.append(await asyncio.to_thread(self.post, "/api/todos", {"title": f"todo {n}"}))
            else:
                posts.append(
                    await asyncio.to_thread(self.post, "/api/messages", {"room": self.rooms[0], "text": f"m{n}"})
                )
        deadline = time.monotonic() + 60
        while sum(counts) < writes * expected_each and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the clients count as they read; poll their total
        cpu = cpu_seconds(self.server.pid) - cpu
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "sockets": sockets,
            "rooms": 0 if whole else rooms,
            "deliveries_per_write": round(sum(counts) / writes, 1),
            "expected_per_write": expected_each,
            "server_cpu_ms_per_write": round(cpu / writes * 1000, 2),
            "post_p50_ms": round(statistics.median(posts) * 1000, 1),
        }

    def close(self) -> None:
        self.server.kill()
        self.server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rooms", type=int, nargs="+", default=[100, 1])
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pb-scopes-") as tmp:
        env = demo_env(tmp)
        bench = Bench(max(args.rooms), env)
        try:
            for rooms in args.rooms:
                print(json.dumps(asyncio.run(bench.run(args.sockets, rooms, args.writes))), flush=True)
            # The room of R = max(rooms) alone: its sockets only.
            size = args.sockets // max(args.rooms)
            print(json.dumps({"alone": True, **asyncio.run(bench.run(size, 1, args.writes))}), flush=True)
            print(
                json.dumps({"whole_resource": True, **asyncio.run(bench.run(args.sockets, 1, args.writes, whole=True))})
            )
        finally:
            bench.close()


if __name__ == "__main__":
    main()
