"""
Role documents (Pattern 2, "full document push"): declare roles in an app's ``live.py``
with ``Role`` and ``register`` (see ``paintbrush.documents.roles``).

    roles.py      declaring roles and their parts: Role, Shared, PerUser, register
    notices.py    writer side: which document parts a committed write affects
    hub.py        where a document is assembled, coalesced and pushed (per process)
    patches.py    where a patch between two revisions is computed (JSON Patch)
    consumers.py  the sockets that hold a document (/ws/doc, "doc" on /ws)
    views.py      GET /api/doc
"""

from .roles import EVERY, DocGroup, Every, Part, PerUser, Role, Shared, register, roles

__all__ = ["EVERY", "DocGroup", "Every", "Part", "PerUser", "Role", "Shared", "register", "roles"]
