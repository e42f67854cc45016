"""
Where a role document is assembled and pushed, in each server process.

Each process has one ``DocHub`` per event loop. It keeps a refcount of its connected
sockets per document group (``admin``, ``customer:<id>``), and joins the channel-layer
groups of those only, so documents are assembled only for users who are connected.

A document is made of parts (``paintbrush.documents.roles``). A notice
(``paintbrush.documents.notices``) marks the parts it names dirty: a shared part (the
catalog) once for the process, a per-user part (alice's orders) for its group. Dirty
parts are flushed after ``PAINTBRUSH["DOC_COALESCE_SECONDS"]``, so a burst of commits
gives one push. A flush:

1. assembles each dirty part once, all in one trip to a database thread: the catalog
   once for every customer and the admin, however many are connected;
2. compares each part's new JSON text with the one it replaces; an equal part changed
   nothing, and a group none of whose parts changed is sent nothing;
3. diffs each changed part once (``paintbrush.documents.patches``) and encodes its
   operations once per place in a document, shared by every group that holds it;
4. gives each changed group its next revision, and each socket the patch from the
   revision it holds, or the whole document (a socket without patches, a new one, or
   one whose previous push is still unsent: ``Outbox.put_document`` then replaces it).

Assemblies and flushes take turns (one lock), so every group holds the current state of
every part it reads at the end of each, and a part's operations apply to all of them.

    hub = get_doc_hub(layer)
    await hub.attach(socket, role, role.group_of(user))   # socket.push_document(revision)
    await hub.detach(socket, role, group)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, NamedTuple, Protocol

from channels.db import database_sync_to_async
from django.db import connections

from .. import encoding, frames, metrics
from ..groups import role_group
from ..hub import Hub, Membership, get_hub
from ..settings import pb_settings
from . import patches
from .notices import parts_of_notice
from .roles import DocGroup, Part, Role

logger = logging.getLogger("paintbrush")

__all__ = ["DocHub", "DocSocket", "PartState", "Revision", "get_doc_hub"]

#: After a failed assembly, the part is assembled again this many seconds later.
_RETRY_SECONDS = 1.0


class DocSocket(Protocol):
    def push_document(self, revision: Revision) -> None:
        """Queue ``revision`` for the socket (it must not wait)."""
        ...


@dataclass(eq=False)
class PartState:
    """One part's value as this process assembled it last."""

    #: The value's JSON text, spliced as is into whole documents.
    text: str
    #: The state it replaced, and the operations that turn that one into this one.
    previous: PartState | None = None
    ops: list[patches.Op] | None = None
    _fragments: dict[str | None, str] = field(default_factory=dict)

    @cached_property
    def value(self) -> Any:
        """The value as clients hold it: parsed from the text, so a diff sees exactly
        what JSON carries (a decimal as its string, a date as its ISO text)."""
        return json.loads(self.text)

    def settle(self, text: str) -> PartState | None:
        """The state after a new assembly gave ``text``; None if nothing changed."""
        if text == self.text:
            return None
        new = PartState(text, previous=self)
        old = self.value
        ops = patches.diff(old, new.value)
        # Checked: applied to the old value (which this state no longer needs, so in
        # place), the operations must give exactly the new text. The diff compares with
        # Python's ==, blind to true becoming 1; then the part is replaced whole.
        del self.value
        if not ops or not _reproduces(old, ops, text):
            ops = _replacing(self.value, new.value)
        new.ops = ops
        return new

    def fragment(self, name: str | None) -> str:
        """This state's operations rooted at the part's place in a document (``name``;
        None: spread at the top), as JSON without its brackets: built once per change
        and place, and shared by every group that holds the part."""
        fragment = self._fragments.get(name)
        if fragment is None:
            assert self.ops is not None
            prefix = "" if name is None else patches.pointer(name)
            rooted = [_rooted(op, prefix) for op in self.ops] if prefix else self.ops
            fragment = self._fragments[name] = encoding.encode(rooted)[1:-1]
        return fragment


def _reproduces(old: Any, ops: list[patches.Op], text: str) -> bool:
    try:
        return encoding.encode(patches.apply(old, ops, in_place=True)) == text
    except patches.PatchError:
        return False


def _rooted(op: patches.Op, prefix: str) -> patches.Op:
    rooted = {**op, "path": prefix + op["path"]}
    if "from" in op:
        rooted["from"] = prefix + op["from"]
    return rooted


def _replacing(old: Any, new: Any) -> list[patches.Op]:
    """Operations replacing every member (a spread body must keep the document's
    ``role``), or the whole value."""
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[patches.Op] = [{"op": "remove", "path": patches.pointer(key)} for key in old if key not in new]
        return ops + [{"op": "add", "path": patches.pointer(key), "value": value} for key, value in new.items()]
    return [{"op": "replace", "path": "", "value": new}]


class Revision:
    """One revision of a group's document: the frames its sockets may be sent, each
    built at most once, when a socket first needs it."""

    def __init__(self, rev: int, role: str, parts: list[tuple[str | None, str]], fragments: list[str] | None) -> None:
        self.rev = rev
        self._role = role
        self._parts = parts
        #: The patch frame from ``rev - 1``, if there is one and it is the smaller.
        self.patch: str | None = None
        if fragments is not None:
            patch = frames.document_patch(fragments, rev)
            if len(patch) < sum(len(text) for _, text in parts):
                self.patch = patch

    @cached_property
    def body(self) -> str:
        return frames.document_body(self._role, self._parts)

    @cached_property
    def whole(self) -> str:
        """The whole document with its revision (to a socket that takes patches)."""
        return frames.document_text(self.body, self.rev)

    @cached_property
    def whole_v1(self) -> str:
        """The whole document as protocol v1 has it, without a revision."""
        return frames.document_text(self.body)


@dataclass(eq=False)
class GroupDocument:
    """What this process last pushed to one group: its revision and its parts."""

    role: Role
    states: dict[str | None, PartState]
    revision: Revision


class _Job(NamedTuple):
    """One part to assemble: a shared one (``group`` None) or one group's."""

    part: Part
    role: str
    group: DocGroup | None = None
    name: str | None = None


class DocHub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.sockets: dict[DocGroup, set[DocSocket]] = {}
        self.roles: dict[DocGroup, Role] = {}
        #: Per per-user role: how many of its groups have local sockets.
        self.role_refs: dict[str, int] = {}
        self.documents: dict[DocGroup, GroupDocument] = {}
        #: The shared parts some local group holds, each assembled once for all of them.
        self.shared: dict[Part, PartState] = {}
        #: Per shared part: how many local groups read it.
        self.shared_refs: Counter[Part] = Counter()
        self.dirty_shared: set[Part] = set()
        #: group -> names of its per-user parts to assemble again
        self.dirty_users: dict[DocGroup, set[str | None]] = {}
        self._memberships: dict[DocGroup | str, Membership] = {}
        self._lock = asyncio.Lock()  # membership changes
        self._assembling = asyncio.Lock()  # reads and pushes take turns
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_shared or self.dirty_users)

    async def attach(self, socket: DocSocket, role: Role, group: DocGroup) -> None:
        """Count ``socket`` in ``group`` and send it the current document."""
        async with self._lock:  # membership changes await the channel layer: serialise them
            if not self.sockets.get(group):
                # Joined before the socket counts: if the channel layer fails here,
                # nothing is left half-done for the next socket of the group to trust.
                hub = get_hub(self.layer)
                if role.per_user and not self.role_refs.get(role.name):
                    self._memberships[role.name] = await hub.join(
                        role_group(role.name), partial(self._on_role_notice, role.name), self._on_lost
                    )
                    self.role_refs[role.name] = 0
                try:
                    self._memberships[group] = await hub.join(
                        group.layer_group, partial(self._on_notice, group), self._on_lost
                    )
                except BaseException:
                    if role.per_user and not self.role_refs.get(role.name):
                        self.role_refs.pop(role.name, None)
                        await hub.leave(self._memberships.pop(role.name))
                    raise
                self.roles[group] = role
                self.shared_refs.update(part for _, part in role.layout if not part.per_user)
                if role.per_user:
                    self.role_refs[role.name] += 1
            self.sockets.setdefault(group, set()).add(socket)
        async with self._assembling:
            # Settle the notices that came first: the parts this group shares with
            # others must be current before it takes them.
            await self._flush()
            # Another tab's document, if any: every notice since has updated it.
            document = self.documents.get(group)
            if document is None:
                document = await self._open(role, group)  # the group's own parts, read now
        if document is not None:
            socket.push_document(document.revision)

    async def detach(self, socket: DocSocket, role: Role, group: DocGroup) -> None:
        async with self._lock:
            local = self.sockets.get(group)
            if local is None or socket not in local:
                return
            local.discard(socket)
            if local:
                return
            # Not while a part is being read: a read begun before this group left (and
            # before a change whose notice then reached no one here) must not become the
            # document of the group's next socket. That socket joins after this (the lock).
            async with self._assembling:
                del self.sockets[group]
                del self.roles[group]
                self.documents.pop(group, None)  # no notices reach a group we leave
                self.dirty_users.pop(group, None)
                for _, part in role.layout:
                    if not part.per_user:
                        self.shared_refs[part] -= 1
                        if not self.shared_refs[part]:
                            del self.shared_refs[part]
                            self.shared.pop(part, None)
                            self.dirty_shared.discard(part)
            hub = get_hub(self.layer)
            await hub.leave(self._memberships.pop(group))
            if role.per_user:
                self.role_refs[role.name] -= 1
                if not self.role_refs[role.name]:
                    del self.role_refs[role.name]
                    await hub.leave(self._memberships.pop(role.name))
            if not self.sockets and self._timer is not None:
                self._timer.cancel()
                self._timer = None

    # -- assembling ------------------------------------------------------------------------

    async def _open(self, role: Role, group: DocGroup) -> GroupDocument | None:
        """Read the parts ``group`` needs that no other group holds, and make its
        first revision (caller holds ``_assembling``)."""
        jobs = [
            _Job(part, role.name, group if part.per_user else None, name)
            for name, part in role.layout
            if part.per_user or part not in self.shared
        ]
        texts = await database_sync_to_async(_assemble)(jobs)
        for text in texts:
            if isinstance(text, BaseException):
                raise text
        if not self.sockets.get(group):
            return None  # its last socket left meanwhile
        states: dict[str | None, PartState] = {}
        for job, text in zip(jobs, texts, strict=True):
            assert isinstance(text, str)
            if job.group is None:
                self.shared.setdefault(job.part, PartState(text))
            else:
                states[job.name] = PartState(text)
        for name, part in role.layout:
            if not part.per_user:
                states[name] = self.shared[part]
        document = GroupDocument(role, states, Revision(1, role.name, _texts(role, states), None))
        self.documents[group] = document
        return document

    async def _flush(self) -> None:
        """Assemble every dirty part once and push what changed (caller holds
        ``_assembling``)."""
        if not self.dirty:
            return
        shared, self.dirty_shared = self.dirty_shared, set()
        users, self.dirty_users = self.dirty_users, {}
        # The dirty marks are taken before reading: a notice that arrives during the
        # read marks its part again, for the next flush.
        jobs: list[_Job] = []
        for part in shared:
            if part in self.shared:
                role = next(role for role in self.roles.values() if any(p is part for _, p in role.layout))
                jobs.append(_Job(part, role.name))
        for group, names in users.items():
            document = self.documents.get(group)
            if document is None:
                continue  # opened since: its first read saw the change
            role = document.role
            jobs.extend(_Job(part, role.name, group, name) for name, part in role.layout if name in names)
        if not jobs:
            return
        texts = await database_sync_to_async(_assemble)(jobs)
        changed_shared: dict[Part, PartState] = {}
        changed_users: dict[DocGroup, dict[str | None, PartState]] = {}
        failed = False
        for job, text in zip(jobs, texts, strict=True):
            if isinstance(text, BaseException):
                logger.error("Paintbrush: assembling %r of the %r document failed", job.name, job.role, exc_info=text)
                failed = True
                # Its sockets still hold the old value: try again after a while.
                if job.group is None:
                    self.dirty_shared.add(job.part)
                else:
                    self.dirty_users.setdefault(job.group, set()).add(job.name)
            elif job.group is None:
                old = self.shared.get(job.part)
                new = old.settle(text) if old is not None else None
                if new is not None:
                    self.shared[job.part] = changed_shared[job.part] = new
            elif (document := self.documents.get(job.group)) is not None:
                new = document.states[job.name].settle(text)
                if new is not None:
                    changed_users.setdefault(job.group, {})[job.name] = new
        if failed:
            asyncio.get_running_loop().call_later(_RETRY_SECONDS, self._schedule_flush)
        for group, document in list(self.documents.items()):
            mine = changed_users.get(group, {})
            updates = {
                name: new
                for name, part in document.role.layout
                if (new := mine.get(name) if part.per_user else changed_shared.get(part)) is not None
            }
            if updates:
                self._publish(group, document, updates)
        # Every group holds the new states now: the old ones (and their values) can go.
        for state in [*changed_shared.values(), *(s for mine in changed_users.values() for s in mine.values())]:
            state.previous = None

    def _publish(self, group: DocGroup, document: GroupDocument, updates: dict[str | None, PartState]) -> None:
        """The group's next revision, to each of its sockets."""
        fragments = []
        for name, new in updates.items():
            old = document.states[name]
            if new.previous is old:
                fragments.append(new.fragment(name))
            else:  # not the state this group held (never expected): replace the part
                ops = (
                    _replacing(old.value, new.value)
                    if name is None
                    else [{"op": "replace", "path": patches.pointer(name), "value": new.value}]
                )
                fragments.append(encoding.encode(ops)[1:-1])
            document.states[name] = new
        role = document.role
        revision = Revision(document.revision.rev + 1, role.name, _texts(role, document.states), fragments)
        document.revision = revision
        for socket in list(self.sockets.get(group, ())):
            try:
                socket.push_document(revision)
            except Exception:
                logger.exception("Paintbrush: pushing the %r document failed", str(group))

    async def flush(self) -> None:
        async with self._assembling:
            try:
                await self._flush()
            except Exception:
                logger.exception("Paintbrush: assembling role documents failed")
                asyncio.get_running_loop().call_later(_RETRY_SECONDS, self._schedule_flush)

    # -- from the process hub ---------------------------------------------------------------

    def _on_notice(self, group: DocGroup, text: str) -> None:
        role = self.roles.get(group)
        if role is not None:
            self._mark(role, [group], parts_of_notice(text))

    def _on_role_notice(self, role_name: str, text: str) -> None:
        """A change concerning every document of a per-user role: a shared part (the
        catalog), or a per-user part of every user."""
        groups = [group for group in self.roles if group.role == role_name]
        if groups:
            self._mark(self.roles[groups[0]], groups, parts_of_notice(text))

    def _on_lost(self, reason: str) -> None:
        """Notices may have been lost: every part is assembled again."""
        for group, role in self.roles.items():
            self._mark(role, [group], None)

    def _mark(self, role: Role, groups: list[DocGroup], names: set[str] | None) -> None:
        for name, part in role.layout:
            if names is not None and (name or "") not in names:
                continue
            if not part.per_user:
                self.dirty_shared.add(part)
            else:
                for group in groups:
                    self.dirty_users.setdefault(group, set()).add(name)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        # The first notice of a burst starts the window; later ones join it.
        if self.dirty and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(pb_settings.DOC_COALESCE_SECONDS, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)


def _texts(role: Role, states: dict[str | None, PartState]) -> list[tuple[str | None, str]]:
    return [(name, states[name].text) for name, _ in role.layout]


def _assemble(jobs: list[_Job]) -> list[str | BaseException]:
    """Each job's part as JSON text, or what it raised (in a database thread)."""
    texts: list[str | BaseException] = []
    for job in jobs:
        try:
            with metrics.assembling(job.role), _counting_queries(job.role):
                texts.append(encoding.encode(job.part.assemble(None if job.group is None else job.group.user_id)))
        except Exception as exc:
            texts.append(exc)
    return texts


@contextlib.contextmanager
def _counting_queries(role: str) -> Iterator[None]:
    count = 0

    def counter(execute: Any, sql: Any, params: Any, many: Any, context: Any) -> Any:
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    with contextlib.ExitStack() as stack:
        for connection in connections.all():
            stack.enter_context(connection.execute_wrapper(counter))
        try:
            yield
        finally:
            metrics.DOCUMENT_QUERIES.labels(role).inc(count)


_doc_hubs: weakref.WeakKeyDictionary[Hub, DocHub] = weakref.WeakKeyDictionary()


def get_doc_hub(layer: Any) -> DocHub:
    """The document hub of ``layer`` for the running event loop."""
    hub = get_hub(layer)
    doc_hub = _doc_hubs.get(hub)
    if doc_hub is None:
        doc_hub = _doc_hubs[hub] = DocHub(layer)
    return doc_hub
