"""
Role documents (Pattern 2, "full document push"): declare roles in an app's ``live.py``
with ``Role`` and ``register`` (see ``paintbrush.documents.roles``).

    roles.py      declaring roles: Role, DocGroup, register
    notices.py    writer side: which document groups a committed write affects
    hub.py        where a document is assembled, coalesced and pushed (per process)
    consumers.py  the sockets that hold a document (/ws/doc, "doc" on /ws)
    views.py      GET /api/doc
"""

from .roles import EVERY, DocGroup, Every, Role, register, roles

__all__ = ["EVERY", "DocGroup", "Every", "Role", "register", "roles"]
