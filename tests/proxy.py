"""
A TCP proxy that can drop its connections silently, as a NAT or a load balancer does
when it forgets an idle flow: no FIN, no RST, both ends still think they are connected,
and whatever either end sends goes nowhere.

    with SilentDropProxy(("127.0.0.1", redis.port)) as proxy:
        server = ServerProcess(redis_url=proxy.url, ...)   # the server talks through it
        ...
        proxy.drop()        # every connection open now: silently dead, for good
                            # (new connections are forwarded as before)
        proxy.refusing = True   # new connections are closed at once (a server down)

It runs its own event loop in a thread, so a test's loop (and the server processes)
are unaffected by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Self

__all__ = ["SilentDropProxy"]


class _Pair:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.dropped = False


class SilentDropProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.pairs: list[_Pair] = []
        self.dropped_pairs = 0
        #: New connections are closed at once while this is set.
        self.refusing = False
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="SilentDropProxy", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    def drop(self) -> int:
        """Silence every connection open now; the number silenced."""

        def silence() -> int:
            live = [pair for pair in self.pairs if not pair.dropped]
            for pair in live:
                pair.dropped = True
            self.dropped_pairs += len(live)
            return len(live)

        return asyncio.run_coroutine_threadsafe(_call(silence), self._loop).result(10)

    def close(self) -> None:
        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            for pair in self.pairs:
                for writer in (pair.client, pair.upstream):
                    writer.close()
            # The pumps of silenced pairs still wait on their readers: end them here, not
            # at garbage collection ("Task was destroyed but it is pending").
            pumps = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        pair = _Pair(writer, up_writer)
        self.pairs.append(pair)
        await asyncio.gather(self._pump(pair, reader, up_writer), self._pump(pair, up_reader, writer))

    async def _pump(self, pair: _Pair, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if pair.dropped:
                    continue  # read and discarded: the sender's kernel sees it taken
                writer.write(data)
                await writer.drain()
        if not pair.dropped:
            writer.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _call(function: object) -> int:
    assert callable(function)
    result: int = function()
    return result
