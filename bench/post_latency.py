"""
How long a writer's POST takes, and how long until every subscriber has the event,
with 1 and with many sockets subscribed to the same resource.

    python bench/post_latency.py --sockets 1 1000 --writes 100

Starts a Daphne server of the demo project (SQLite on tmpfs, in-memory channel layer)
as a subprocess, connects the sockets from this process with the `websockets` package,
and POSTs sequentially. The claim it checks: the writer's cost does not grow with the
number of subscribers (one channel-layer message per write, fanned out by the process
hub), so POST latency at 1,000 sockets stays close to the 1-socket figure.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, db: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "bench"}
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):  # wait until it accepts connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def q(samples: list[float], percentile: int) -> float:
    """The percentile of ``samples`` (seconds), in milliseconds."""
    return statistics.quantiles(samples, n=100)[percentile - 1] * 1000


def post(port: int, title: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"title": title})
    start = time.perf_counter()
    conn.request("POST", "/api/todos", body, {"Content-Type": "application/json", "Host": "localhost"})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    assert response.status == 201, response.status
    conn.close()
    return elapsed


async def run(port: int, sockets: int, writes: int) -> dict[str, float]:
    url = f"ws://127.0.0.1:{port}/ws"
    clients = []
    for _ in range(sockets):
        ws = await websockets.connect(url, origin="http://localhost", max_queue=None)  # type: ignore[arg-type]
        await ws.send(json.dumps({"action": "opendoc", "resource": "todos"}))
        assert json.loads(await ws.recv())["type"] == "opened"
        clients.append(ws)
    post_times, fanout_times = [], []
    for i in range(writes):
        start = time.perf_counter()
        post_times.append(await asyncio.to_thread(post, port, f"bench {i}"))
        await asyncio.gather(*(ws.recv() for ws in clients))
        fanout_times.append(time.perf_counter() - start)
    for ws in clients:
        await ws.close()
    return {
        "post_p50_ms": q(post_times, 50),
        "post_p99_ms": q(post_times, 99),
        "all_delivered_p50_ms": q(fanout_times, 50),
        "all_delivered_p99_ms": q(fanout_times, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, nargs="+", default=[1, 1000])
    parser.add_argument("--writes", type=int, default=100)
    args = parser.parse_args()
    tmp = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    for count in args.sockets:
        with tempfile.TemporaryDirectory(dir=tmp) as directory:
            port = free_port()
            server = start_server(port, f"{directory}/bench.sqlite3")
            try:
                result = asyncio.run(run(port, count, args.writes))
            finally:
                server.terminate()
                server.wait()
        print(f"sockets={count:5d} " + " ".join(f"{k}={v:7.2f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
