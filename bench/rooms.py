"""
Entering one chat room of a large table: the window query, its plan, and what a socket
costs and receives (issue 14, point 3 and the second half of point 6).

    python bench/rooms.py                         # SQLite in a temp dir
    DATABASE_URL=postgres://... python bench/rooms.py   # an empty PostgreSQL database

Makes 100 rooms of 1,000 messages (100,000 rows), then:

- prints the SQL of ``GET /api/messages?room=<r>&last=50`` and the database's plan
  for it (SQLite's ``EXPLAIN QUERY PLAN``, PostgreSQL's ``EXPLAIN ANALYZE``);
- opens a socket (Channels' ``WebsocketCommunicator`` on the project's ASGI
  application, in-memory layer) and sends ``opendoc`` with ``where: {room}``,
  ``snapshot: true`` and ``last: 50``, 20 times: the snapshot frame's bytes, the
  queries the opendoc ran, and the time from ``opendoc`` to the snapshot (median, max).

Nothing here passes or fails: the numbers go in the issue note.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="pb-rooms-")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_tmp}/db.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import QuerySet  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from paintbrush.testing import connect, receive  # noqa: E402
from project.demo.models import Message, Room  # noqa: E402

ROOMS, PER_ROOM, WINDOW, TRIES = 100, 1_000, 50, 20


def populate() -> tuple[object, Room]:
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench")
    plain_rooms: QuerySet[Room] = QuerySet(Room)
    rooms = plain_rooms.bulk_create([Room(name=f"room-{i}", owner=user) for i in range(ROOMS)])
    for room in rooms:
        # Plain QuerySet: a live bulk_create would publish 100,000 events nobody hears.
        plain_messages: QuerySet[Message] = QuerySet(Message)
        plain_messages.bulk_create(
            [Message(room=room, user=user, text=f"message {n} of {room.name}") for n in range(PER_ROOM)],
            batch_size=500,
        )
    return user, rooms[ROOMS // 2]


def plan(user: object, room: Room) -> None:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)  # type: ignore[arg-type]
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/messages?room={room.pk}&last={WINDOW}")
    assert response.status_code == 200 and len(response.json()) == WINDOW
    listing = [q["sql"] for q in queries.captured_queries if "demo_message" in q["sql"]]
    print(f"## {connection.vendor}: GET /api/messages?room=<r>&last={WINDOW}\n")
    print(f"{len(queries.captured_queries)} queries in all; the listing:\n\n```sql\n{listing[-1]}\n```\n")
    explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN ANALYZE "
    with connection.cursor() as cursor:
        cursor.execute(explain + listing[-1])
        rows = cursor.fetchall()
    print("```\n" + "\n".join(" | ".join(str(c) for c in row) for row in rows) + "\n```\n")


def queries_of_entering(user: object, room: Room) -> tuple[int, list[str]]:
    """The queries an opendoc with a snapshot runs (permission, scope, listing), counted
    on the database thread's own path, in this thread."""
    from paintbrush import snapshots
    from paintbrush.resources import site

    resource = site.get("messages")
    assert resource is not None
    with CaptureQueriesContext(connection) as queries:
        view, key = snapshots.listing(resource, user, {"room": room.pk}, WINDOW)
        frames = snapshots._render(view, snapshots._Batch(key, "messages", {"room": room.pk}, WINDOW), {})
    assert len(json.loads(frames[0])["items"]) == WINDOW
    return len(queries.captured_queries), [q["sql"] for q in queries.captured_queries]


async def enter(user: object, room: Room) -> None:
    times, sizes = [], []
    for _ in range(TRIES):
        ws = await connect(user=user)
        start = time.perf_counter()
        await ws.send_json_to(
            {"action": "opendoc", "resource": "messages", "where": {"room": room.pk}, "snapshot": True, "last": WINDOW}
        )
        assert (await receive(ws))["type"] == "opened"
        raw = await ws.receive_from(timeout=10)
        times.append(time.perf_counter() - start)
        frame = json.loads(raw)
        assert len(frame["items"]) == WINDOW, len(frame["items"])
        sizes.append(len(raw.encode()))
        await ws.disconnect()
    count, sql = await sync_to_async(queries_of_entering)(user, room)
    print(
        f"entering a room of {PER_ROOM} messages ({ROOMS * PER_ROOM} in the table) with last={WINDOW}: "
        f"snapshot frame {statistics.median(sizes)} bytes, {count} queries "
        f"(the scope check, the window), opendoc to snapshot p50 {statistics.median(times) * 1000:.1f} ms, "
        f"max {max(times) * 1000:.1f} ms ({TRIES} tries, in-process, in-memory layer)"
    )
    for statement in sql:
        print(f"  - {statement[:160]}")


def main() -> None:
    user, room = populate()
    plan(user, room)
    asyncio.run(enter_safely(user, room))


async def enter_safely(user: object, room: Room) -> None:
    await sync_to_async(lambda: None)()  # the database thread exists before the timing
    await enter(user, room)


if __name__ == "__main__":
    main()
