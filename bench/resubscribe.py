"""
Re-subscription after a restart: N clients connect at once and each asks for the
snapshot of one resource of R rows, as every page does when its server comes back.

    python bench/resubscribe.py --clients 300 500 --rows 5000
    python bench/resubscribe.py --root ../old-checkout --clients 500   # another tree's code

For each N, against ``scripts/serve`` (one uvicorn process, SQLite, in-memory layer) of
the tree at ``--root``:

- seconds until the last client holds its complete snapshot (from the first connect);
- the server's CPU seconds over that time (``/proc/<pid>/stat``);
- bytes of snapshot frames the clients received;
- snapshots the server rendered, when the tree reports it (``paintbrush.snapshots.stats``
  is read through the demo's ``/ops/metrics.json`` if it carries it; otherwise "-").

The clients run in this process (asyncio, ``websockets``); the machine's other core
serves. Nothing here is a pass/fail test: the numbers go in the README and issue notes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


def prepare(root: Path, rows: int, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=root, env=env, check=True)
    code = (
        "from project.demo.models import Todo\n"
        f"Todo.objects.bulk_create([Todo(title=f'todo number {{i}} of the benchmark') for i in range({rows})])\n"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=root, env=env, check=True)


def wait_http(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/todos?probe", timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


async def one_client(url: str, origin: str, rows: int) -> tuple[float, int]:
    received = 0
    items = 0
    async with connect(url, origin=Origin(origin), max_size=None, open_timeout=120, ping_interval=None) as ws:
        await ws.send(json.dumps({"action": "opendoc", "resource": "todos", "snapshot": True}))
        while True:
            raw = await ws.recv()
            received += len(raw)
            frame = json.loads(raw)
            if frame.get("action") == "snapshot":
                items += len(frame["items"])
                if not frame.get("more"):
                    break
    assert items == rows, (items, rows)
    return time.monotonic(), received


async def run(port: int, clients: int, rows: int, pid: int) -> dict[str, float | int]:
    url = f"ws://127.0.0.1:{port}/ws"
    origin = f"http://127.0.0.1:{port}"
    cpu_before = cpu_seconds(pid)
    start = time.monotonic()
    results = await asyncio.gather(*(one_client(url, origin, rows) for _ in range(clients)))
    last = max(done for done, _ in results)
    return {
        "clients": clients,
        "seconds_to_last": round(last - start, 2),
        "server_cpu_s": round(cpu_seconds(pid) - cpu_before, 2),
        "mb_received": round(sum(size for _, size in results) / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=HERE, help="the checkout whose code is served")
    parser.add_argument("--clients", type=int, nargs="+", default=[300, 500])
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()
    root = args.root.resolve()
    with tempfile.TemporaryDirectory(prefix="pb-resubscribe-") as tmp:
        env = demo_env(tmp)
        prepare(root, args.rows, env)
        for clients in args.clients:
            port = free_port()
            server = subprocess.Popen(
                ["bash", "scripts/serve", f"127.0.0.1:{port}"],
                cwd=root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_http(port, server)
                figures = asyncio.run(run(port, clients, args.rows, server.pid))
                print(json.dumps({"root": str(root), "rows": args.rows, **figures}), flush=True)
            finally:
                server.kill()
                server.wait(10)


if __name__ == "__main__":
    main()
