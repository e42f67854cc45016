"""
Where a document patch is computed: RFC 6902 JSON Patch between two revisions of a part
of a role document (protocol section 2c), using the shape of these documents.

    ops = diff(old, new)           # [{"op": "replace", "path": "/3/price", "value": "9.99"}]
    apply(old, ops) == new         # what a client does (tests check every frame with it)

A document is made of lists of items that carry an ``id`` (orders, products, users). A
generic JSON diff matches list elements by position, so a new order at the head of a
list reads to it as a change of every item after it; here items are matched by ``id``:
an item added is one ``add``, one removed is one ``remove``, one changed is a
``replace`` of each changed field. A list without ids, or whose kept items changed their
order, is diffed by position or replaced whole. ``bench/document_diff.py`` measures
this against the ``jsonpatch`` package (python-json-patch) on the demo's documents.

Values are compared with Python's ``==`` on parsed JSON (in C, fast), which holds
``true == 1`` and ``1 == 1.0``: a value that turns from one into the other, alone in an
object or list otherwise unchanged, goes unseen here. The hub therefore checks every
patch (``paintbrush.documents.hub.PartState.settle``): applied to the old value, it must
give exactly the new JSON text, or the part is replaced whole.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

__all__ = ["PatchError", "apply", "diff", "pointer"]

Op = dict[str, Any]


class PatchError(ValueError):
    """A patch that does not apply to the document (a missing path, a failed test)."""


def pointer(*tokens: Any) -> str:
    """The JSON Pointer (RFC 6901) of ``tokens``: ``pointer("orders", 3)`` is ``/orders/3``."""
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


def diff(old: Any, new: Any, path: str = "") -> list[Op]:
    """The operations that turn ``old`` into ``new`` (both parsed JSON), rooted at ``path``."""
    ops: list[Op] = []
    _diff(old, new, path, ops)
    return ops


def _diff(old: Any, new: Any, path: str, ops: list[Op]) -> None:
    if old == new and type(old) is type(new):
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": path + pointer(key)})
        for key, value in new.items():
            if key in old:
                _diff(old[key], value, path + pointer(key), ops)
            else:
                ops.append({"op": "add", "path": path + pointer(key), "value": value})
    elif isinstance(old, list) and isinstance(new, list):
        _diff_list(old, new, path, ops)
    else:
        ops.append({"op": "replace", "path": path, "value": new})


def _ids(items: list[Any]) -> list[Any] | None:
    """The items' ids, if every item is an object with a distinct, hashable ``id``."""
    ids = []
    for item in items:
        if not isinstance(item, dict) or "id" not in item or isinstance(item["id"], (dict, list)):
            return None
        ids.append(item["id"])
    return ids if len(set(ids)) == len(ids) else None


def _diff_list(old: list[Any], new: list[Any], path: str, ops: list[Op]) -> None:
    old_ids, new_ids = _ids(old), _ids(new)
    if old_ids is None or new_ids is None:
        _diff_by_position(old, new, path, ops)
        return
    if old_ids == new_ids:
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            _diff(before, after, f"{path}/{index}", ops)
        return
    wanted, held = set(new_ids), set(old_ids)
    kept = [item_id for item_id in old_ids if item_id in wanted]
    if kept != [item_id for item_id in new_ids if item_id in held]:
        # The items both revisions hold changed their order: no add/remove walk says
        # that, and a move per item is no smaller than the list.
        ops.append({"op": "replace", "path": path, "value": new})
        return
    # Removals from the end first, so each index is still the old one; then, walking
    # the new list in order, every position before the current one is final, so an
    # insertion or a kept item's change lands at its new index.
    for index in range(len(old) - 1, -1, -1):
        if old_ids[index] not in wanted:
            ops.append({"op": "remove", "path": f"{path}/{index}"})
    by_id = dict(zip(old_ids, old, strict=True))
    for index, (item_id, item) in enumerate(zip(new_ids, new, strict=True)):
        if item_id in held:
            _diff(by_id[item_id], item, f"{path}/{index}", ops)
        else:
            ops.append({"op": "add", "path": f"{path}/{index}", "value": item})


def _diff_by_position(old: list[Any], new: list[Any], path: str, ops: list[Op]) -> None:
    for index in range(min(len(old), len(new))):
        _diff(old[index], new[index], f"{path}/{index}", ops)
    for index in range(len(old) - 1, len(new) - 1, -1):
        ops.append({"op": "remove", "path": f"{path}/{index}"})
    for index in range(len(old), len(new)):
        ops.append({"op": "add", "path": f"{path}/-", "value": new[index]})


# -- applying (what a client does; used by tests and benchmarks) ------------------------


def apply(document: Any, ops: list[Op], *, in_place: bool = False) -> Any:
    """``document`` after ``ops`` (RFC 6902: add, remove, replace, move, copy, test).
    The input is not modified, unless ``in_place`` (then the result may be it, changed);
    raises ``PatchError`` if an operation does not apply."""
    result = document if in_place else copy.deepcopy(document)
    for op in ops:
        result = _apply_one(result, op)
    return result


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"{path!r} is not a JSON Pointer")
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _index(container: list[Any], token: str, *, adding: bool) -> int:
    if adding and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"{token!r} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not adding):
        raise PatchError(f"index {index} is out of range")
    return index


def _parent(document: Any, path: str) -> tuple[Any, str]:
    tokens = _tokens(path)
    if not tokens:
        raise PatchError("the operation needs a path below the root")
    node = document
    for token in tokens[:-1]:
        node = _child(node, token)
    return node, tokens[-1]


def _child(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise PatchError(f"no member {token!r}")
        return node[token]
    if isinstance(node, list):
        return node[_index(node, token, adding=False)]
    raise PatchError(f"{token!r} leads into a value that is neither an object nor an array")


def _get(document: Any, path: str) -> Any:
    node = document
    for token in _tokens(path):
        node = _child(node, token)
    return node


def _add(document: Any, path: str, value: Any) -> Any:
    if path == "":
        return value
    parent, token = _parent(document, path)
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, adding=True), value)
    else:
        raise PatchError(f"cannot add into {path!r}")
    return document


def _remove(document: Any, path: str) -> Any:
    parent, token = _parent(document, path)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"no member {token!r} to remove")
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, adding=False))
    raise PatchError(f"cannot remove {path!r}")


def _apply_one(document: Any, op: Op) -> Any:
    kind, path = op.get("op"), op.get("path")
    if not isinstance(path, str):
        raise PatchError(f"operation without a path: {op!r}")
    if kind in ("move", "copy") and not isinstance(op.get("from"), str):
        raise PatchError(f"{kind} without from: {op!r}")
    if kind not in _OPERATIONS or (kind in ("add", "replace", "test") and "value" not in op):
        raise PatchError(f"not an operation: {op!r}")
    return _OPERATIONS[kind](document, path, op)


def _op_add(document: Any, path: str, op: Op) -> Any:
    return _add(document, path, copy.deepcopy(op["value"]))


def _op_remove(document: Any, path: str, op: Op) -> Any:
    _remove(document, path)
    return document


def _op_replace(document: Any, path: str, op: Op) -> Any:
    if path == "":
        return copy.deepcopy(op["value"])
    _get(document, path)  # must exist
    parent, token = _parent(document, path)
    # In its place: a member keeps its position among its object's members.
    parent[_index(parent, token, adding=False) if isinstance(parent, list) else token] = copy.deepcopy(op["value"])
    return document


def _op_move(document: Any, path: str, op: Op) -> Any:
    source = op["from"]
    if source == path:
        return document
    if path.startswith(source + "/"):
        raise PatchError("cannot move a value into itself")
    return _add(document, path, _remove(document, source))


def _op_copy(document: Any, path: str, op: Op) -> Any:
    return _add(document, path, copy.deepcopy(_get(document, op["from"])))


def _op_test(document: Any, path: str, op: Op) -> Any:
    if _get(document, path) != op["value"]:
        raise PatchError(f"test failed at {path!r}")
    return document


_OPERATIONS: dict[Any, Callable[[Any, str, Op], Any]] = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}
