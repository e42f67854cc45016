"""
Which diff computes document patches: ``paintbrush.documents.patches.diff`` (matches
list items by ``id``) against the ``jsonpatch`` package (python-json-patch's
``make_patch``, the maintained generic RFC 6902 diff), on parts shaped like the demo's
documents (``bench/documents.py`` measures the whole push).

    python bench/document_diff.py
    python bench/document_diff.py --orders 600 2000 --products 200

For each change: microseconds per diff (best of several rounds) and the patch's size
as JSON. Both patches are checked to turn the old value into the new one.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonpatch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paintbrush.documents import patches


def products(count: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"Product {i}", "price": f"{i % 50 + 1}.99", "version": 1} for i in range(1, count + 1)]


def orders(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "user": i % 300 + 2,
            "product": i % 200 + 1,
            "quantity": 1 + i % 5,
            "status": "pending",
            "created_at": f"2026-12-06T05:{i // 60 % 60:02d}:{i % 60:02d}.000000Z",
            "version": 1,
        }
        for i in range(1, count + 1)
    ]


def changes(n_products: int, n_orders: int) -> list[tuple[str, Any, Any]]:
    """(name, old, new) for each change measured."""
    catalog = products(n_products)
    repriced = copy.deepcopy(catalog)
    repriced[n_products // 2].update(price="0.50", version=2)
    book = orders(n_orders)
    quantity = copy.deepcopy(book)
    quantity[n_orders // 2].update(quantity=9, version=2)
    added = [*book, {**book[0], "id": n_orders + 1, "created_at": "2026-12-06T06:00:00.000000Z"}]
    removed = book[: n_orders // 2] + book[n_orders // 2 + 1 :]
    return [
        (f"catalog of {n_products}: one price", catalog, repriced),
        (f"{n_orders} orders: one quantity", book, quantity),
        (f"{n_orders} orders: one added (at the end)", book, added),
        (f"{n_orders} orders: one removed (in the middle)", book, removed),
        (f"{n_orders} orders: the first removed", book, book[1:]),
    ]


def measure(diff: Callable[[Any, Any], list[dict[str, Any]]], old: Any, new: Any) -> tuple[float, int]:
    ops = diff(old, new)
    assert patches.apply(old, ops) == new, "the patch does not reproduce the new value"
    rounds = 5
    number = max(1, int(0.2 / max(timeit.timeit(lambda: diff(old, new), number=1), 1e-6)))
    best = min(timeit.repeat(lambda: diff(old, new), number=number, repeat=rounds)) / number
    return best * 1e6, len(json.dumps(ops, separators=(",", ":")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, nargs="+", default=[600, 2000])
    parser.add_argument("--products", type=int, default=200)
    args = parser.parse_args()
    contenders: dict[str, Callable[[Any, Any], list[dict[str, Any]]]] = {
        "paintbrush (by id)": patches.diff,
        f"jsonpatch {jsonpatch.__version__}": lambda old, new: list(jsonpatch.make_patch(old, new)),
    }
    print("| change | " + " | ".join(f"{name}: µs / bytes" for name in contenders) + " |")
    print("|---|" + "--:|" * len(contenders))
    seen = set()
    for n_orders in args.orders:
        for name, old, new in changes(args.products, n_orders):
            if name in seen:
                continue
            seen.add(name)
            cells = [measure(diff, old, new) for diff in contenders.values()]
            print(f"| {name} | " + " | ".join(f"{us:,.0f} / {size:,}" for us, size in cells) + " |")


if __name__ == "__main__":
    main()
