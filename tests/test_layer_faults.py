"""
Faults that used to wedge a server process or leave it silently stale, reproduced
against the servers users run (``scripts/serve``, and ``runserver`` where the promise is
about the demo) with a real Redis, and a TCP proxy that drops connections silently
(``tests/proxy.py``):

- a process's hub deadlocked for good when its last subscriber of a group left while
  another process wrote to it (channels-redis returned a message from a cancelled
  receive, and the hub waited for that task under its lock);
- a socket closed for flooding was never released (its queued frames each closed it
  again, uvicorn raised, the consumer died before its disconnect handler), and under
  runserver Daphne refused the close code, leaving the socket open;
- a Redis connection dropped without FIN or RST (a NAT, a load balancer) lost events
  with no resync, and held a write's response for 30 s.

Each test prints a ``FAULT-FIGURES`` line (see ``tests/test_faults.py``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from .proxy import SilentDropProxy
from .servers import ROOT, ServerProcess, database_url, rest_state, wait_converged
from .test_faults import FaultTestCase, needs_redis, new_prefix, rest, truth_of

#: Seconds for a half-open connection to be noticed (a probe every 5 s, back within 5 s),
#: the hub to listen anew, and the client to take its snapshot; with room for this
#: 2-core machine's load.
HALF_OPEN_CONVERGE_SECONDS = 45.0


async def opened_within(url: str, origin: str, timeout: float) -> bool:
    """Open a socket, subscribe to todos and close: True if ``opened`` came in time."""
    try:
        async with connect(url, origin=Origin(origin), open_timeout=timeout, close_timeout=2) as ws:
            await ws.send(json.dumps({"action": "opendoc", "resource": "todos"}))
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return False
                frame = json.loads(await asyncio.wait_for(ws.recv(), remaining))
                if frame.get("type") == "opened":
                    return True
    except (TimeoutError, ConnectionClosed):  # ConnectionClosed: refused (4029, ...)
        return False


WRITER = """
import time
from project.demo.models import Todo
end = time.monotonic() + {seconds}
n = 0
while time.monotonic() < end:
    todo = Todo.objects.create(title=f"churn {{n}}")
    todo.delete()
    n += 1
print("WRITES", n, flush=True)
"""


@needs_redis
class HubChurnTests(FaultTestCase):
    async def test_sockets_coming_and_going_while_another_process_writes_never_wedge_the_hub(self) -> None:
        """Before: one anonymous socket opening and closing in a loop while another
        process wrote wedged the server in 4 of 4 runs within 20-30 s (no opendoc
        answered again, SIGTERM hung). Expected: every cycle answered, a clean exit."""
        redis = await asyncio.to_thread(self.redis)
        prefix = new_prefix()
        server = ServerProcess(redis_url=redis.url, prefix=prefix)
        self.addCleanup(server.close)
        await asyncio.to_thread(server.start)
        self.servers.append(server)
        seconds = 20
        env = {
            **server.environment(),
            "DATABASE_URL": database_url(),
        }
        writer = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", WRITER.format(seconds=seconds)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.addCleanup(_kill, writer)
        cycles = failures = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            cycles += 1
            if not await opened_within(server.ws_url, server.origin, timeout=5):
                failures += 1
                break
        output, _ = await asyncio.to_thread(writer.communicate, timeout=60)
        writes = next((line.split()[1] for line in output.decode().splitlines() if line.startswith("WRITES")), "?")
        # A wedged hub also hung the server's shutdown.
        assert server.process is not None
        start = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(server.process.wait, 15)
            exited = round(time.monotonic() - start, 2)
        except subprocess.TimeoutExpired:
            exited = None
        self.figures.update(cycles=cycles, unanswered=failures, writer_writes=writes, sigterm_exit_s=exited)
        self.assertEqual(failures, 0, f"an opendoc went unanswered after {cycles} cycles\n{self.logs()}")
        self.assertGreater(cycles, 20)
        self.assertIsNotNone(exited, "SIGTERM did not end the server within 15 s")


class FloodReleaseTests(FaultTestCase):
    async def flood_closes(self, kind: str, expected_code: int) -> None:
        server = ServerProcess(kind=kind)
        self.addCleanup(server.close)
        await asyncio.to_thread(server.start)
        self.servers.append(server)
        codes: list[int | str | None] = []
        # More flood-closed sockets than one client may hold open (50): each must have
        # given its place back, or the last ones are refused with 4029.
        for _ in range(55):
            codes.append(await _flood_once(server))
        answered = await opened_within(server.ws_url, server.origin, timeout=5)
        self.figures.update(server=kind, closes=sorted({str(c) for c in codes}), then_opened=answered)
        self.assertEqual(set(codes), {expected_code}, f"{codes}\n{self.logs()}")
        self.assertTrue(answered, f"a socket after the floods was not served\n{self.logs()}")
        log = server.log_text()
        self.assertNotIn("Unexpected ASGI message", log)
        self.assertNotIn("invalid close code", log)

    async def test_flood_closed_sockets_are_released_under_scripts_serve(self) -> None:
        """Before: the 51st socket got 4029, and events still went to 51 dead
        subscriptions (uvicorn: "Unexpected ASGI message 'websocket.close', after sending
        'websocket.close'")."""
        await self.flood_closes("serve", 1008)

    async def test_flood_closed_sockets_are_closed_and_released_under_runserver(self) -> None:
        """Before: Daphne refused 1008 ("invalid close code") and the socket stayed open.
        There the close goes out as 4008 (docs/protocol.md, close codes)."""
        await self.flood_closes("runserver", 4008)


@needs_redis
class HalfOpenRedisTests(FaultTestCase):
    async def converge_after_a_silent_drop(self, layer: str) -> None:
        redis = await asyncio.to_thread(self.redis)
        proxy = SilentDropProxy(("127.0.0.1", redis.port))
        await asyncio.to_thread(proxy.start)
        self.addCleanup(proxy.close)
        prefix = new_prefix()
        # The reader's every Redis connection goes through the proxy; the writer's do not.
        reader = ServerProcess(redis_url=proxy.url, prefix=prefix, env={"REDIS_LAYER": layer})
        writer = ServerProcess(redis_url=redis.url, prefix=prefix, env={"REDIS_LAYER": layer})
        for server in (reader, writer):
            self.addCleanup(server.close)
        await asyncio.gather(asyncio.to_thread(reader.start), asyncio.to_thread(writer.start))
        self.servers += [reader, writer]
        async with self.clients((reader, "behind-the-nat")) as clients:
            (client,) = clients
            await client.open("todos")
            # Written through the reader, so that its connection for sending is open
            # (and dropped below) as it is in a server that has been writing.
            self.assertEqual((await rest("POST", reader.url("/api/todos"), {"title": "before"}))[0], 201)
            ok, _ = await wait_converged(clients, "todos", await truth_of(writer), 20)
            self.assertTrue(ok, self.logs())
            dropped = await asyncio.to_thread(proxy.drop)
            start = time.monotonic()
            for i in range(2):
                self.assertEqual((await rest("POST", writer.url("/api/todos"), {"title": f"unseen {i}"}))[0], 201)
            # A write in the process whose connections are dead: its response must not
            # wait on them (it took 30.05 s with the pub/sub layer).
            began = time.monotonic()
            status, _ = await rest("POST", reader.url("/api/todos"), {"title": "from behind"})
            post_s = round(time.monotonic() - began, 2)
            truth = await truth_of(writer)
            ok, _ = await wait_converged(clients, "todos", truth, HALF_OPEN_CONVERGE_SECONDS)
            self.figures.update(
                layer=layer,
                connections_dropped=dropped,
                written=3,
                reader_post_status=status,
                reader_post_s=post_s,
                converge_s=round(time.monotonic() - start, 2),
            )
            self.client_figures(clients)
            self.assertEqual(status, 201)
            self.assertLess(post_s, 10, "the write waited on a dead connection")
            self.assertGreaterEqual(dropped, 1)
            self.assertTrue(ok, f"not converged:\n{self.divergence(clients, truth)}\n{self.logs()}")
            self.assertGreaterEqual(client.figures.resyncs, 1)

    async def test_events_lost_on_a_silently_dropped_connection_are_resynced(self) -> None:
        """Core layer. Before: 1 of 3 events lost and never resynced (the writer's first
        message, which numbering cannot show; the hub took the timeout for an idle
        channel)."""
        await self.converge_after_a_silent_drop("core")

    async def test_the_pubsub_layer_recovers_from_a_silently_dropped_connection(self) -> None:
        """Pub/sub layer (docs/deploy.md's choice at scale). Before: 0 of 3 events in
        240 s, no resync, and the server's own POST took 30.05 s."""
        await self.converge_after_a_silent_drop("pubsub")


class MarkerAtExitTests(FaultTestCase):
    """A management command whose writes the layer refused used to exit owing its lost
    markers (a daemon thread was to send them): its subscribers never resynced."""

    @needs_redis
    async def test_a_process_that_ends_owing_markers_sends_them_first(self) -> None:
        redis = await asyncio.to_thread(self.redis)
        # The command reaches Redis through a proxy that refuses it for a while; the
        # server is never cut off, so only the command's marker can tell it anything.
        proxy = SilentDropProxy(("127.0.0.1", redis.port))
        await asyncio.to_thread(proxy.start)
        self.addCleanup(proxy.close)
        prefix = new_prefix()
        server = ServerProcess(redis_url=redis.url, prefix=prefix)
        self.addCleanup(server.close)
        await asyncio.to_thread(server.start)
        self.servers.append(server)
        async with self.clients((server, "subscriber")) as clients:
            (client,) = clients
            await client.open("todos")
            proxy.refusing = True
            env = {**server.environment(), "DATABASE_URL": database_url(), "REDIS_URL": proxy.url}
            command = subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "shell",
                    "-c",
                    "from project.demo.models import Todo; Todo.objects.create(title='refused by the layer')",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            self.addCleanup(_kill, command)
            assert command.stdout is not None
            owed = await asyncio.to_thread(_read_until, command.stdout, "owed a lost-message marker", 60)
            self.assertTrue(owed, "the command did not say it owed a marker")
            proxy.refusing = False  # the layer is back while the command is exiting
            rest_of_output, _ = await asyncio.to_thread(command.communicate, timeout=30)
            code = command.returncode
            truth = await asyncio.to_thread(rest_state, server, "todos")
            ok, seconds = await wait_converged(clients, "todos", truth, 20)
            self.figures.update(command_exit=code, converge_s=round(seconds, 2), resyncs=client.figures.resyncs)
            self.assertEqual(code, 0, rest_of_output.decode(errors="replace"))
            self.assertTrue(
                ok,
                f"not converged:\n{self.divergence(clients, truth)}\n{self.logs()}\n"
                + rest_of_output.decode(errors="replace"),
            )
            self.assertEqual(client.figures.resyncs, 1)


async def _flood_once(server: ServerProcess) -> int | str | None:
    """Send one socket more bad frames than MAX_ERRORS_PER_MINUTE (120) without reading;
    the close code it got (None: none within 10 s, the close was refused; "reset": the
    connection was dropped without one)."""
    try:
        async with connect(server.ws_url, origin=Origin(server.origin), close_timeout=2) as ws:
            for _ in range(130):
                await ws.send("{nope")
            while True:
                await asyncio.wait_for(ws.recv(), 10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else "reset"
    except TimeoutError:
        return None
    except OSError:
        return "reset"


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


def _read_until(stream: object, needle: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    assert hasattr(stream, "readline")
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            return False
        if needle in line.decode(errors="replace"):
            return True
    return False
