"""The README's layout table is the tree: every module of the app is listed, and every
listed path exists (a newcomer finds "where is a delta built" from it)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parent.parent


def layout_paths() -> set[Path]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    paths: set[Path] = set()
    for row in re.findall(r"^\| (.+?) \|", section, flags=re.M):
        names = re.findall(r"`([^`]+)`", row)
        base = Path(names[0]).parent if names else None
        for name in names:
            path = Path(name) if "/" in name else (base / name if base else Path(name))
            paths.add(path)
    return paths


class LayoutTests(SimpleTestCase):
    def test_every_module_of_the_app_is_in_the_readme_layout(self) -> None:
        listed = layout_paths()
        modules = {
            path.relative_to(ROOT)
            for path in (ROOT / "paintbrush").rglob("*.py")
            if path.name not in {"__init__.py", "apps.py"} and "migrations" not in path.parts
        }
        self.assertEqual(sorted(map(str, modules - listed)), [])

    def test_every_path_in_the_layout_exists(self) -> None:
        missing = [str(path) for path in layout_paths() if not (ROOT / path).exists()]
        self.assertEqual(missing, [])

    def test_no_module_names_a_file_that_is_not_there(self) -> None:
        # Docstrings point readers at files: those files must exist.
        wrong = []
        for path in (ROOT / "paintbrush").rglob("*"):
            if path.suffix not in {".py", ".js"}:
                continue
            for name in re.findall(r"[\w./-]+\.md\b", path.read_text()):
                if not (ROOT / name).exists():
                    wrong.append(f"{path.relative_to(ROOT)}: {name}")
        self.assertEqual(wrong, [])

    def test_every_module_named_in_a_docstring_exists(self) -> None:
        # ``paintbrush.publish`` outlived the module it named: a reader followed it nowhere.
        wrong = []
        for path in (ROOT / "paintbrush").rglob("*.py"):
            for docstring in _docstrings(path):
                for name in re.findall(r"``(paintbrush(?:\.\w+)+)", docstring):
                    # Check ids (paintbrush.E001) and log line names are not modules.
                    if re.fullmatch(r"paintbrush\.[EW]\d{3}", name) or name in _LOG_LINES:
                        continue
                    if not _resolves(name):
                        wrong.append(f"{path.relative_to(ROOT)}: {name}")
        self.assertEqual(wrong, [])

    def test_modules_import_from_each_other_only_what_they_export(self) -> None:
        # A module's __all__ is its surface: a name another module needs belongs there
        # (bulk.py used to build Write(_stored=...), metrics.py to read hub._hubs).
        wrong = []
        for path in sorted((ROOT / "paintbrush").rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = _module_name(path)
            package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
            for statement in ast.walk(ast.parse(path.read_text())):
                if not isinstance(statement, ast.ImportFrom) or not statement.level or not statement.module:
                    continue
                base = package.split(".")[: len(package.split(".")) - statement.level + 1]
                source = importlib.import_module(".".join([*base, statement.module]))
                exported = getattr(source, "__all__", None)
                for alias in statement.names:
                    if alias.name.startswith("_") or (exported is not None and alias.name not in exported):
                        wrong.append(f"{module}: from {source.__name__} import {alias.name}")
        self.assertEqual(wrong, [])

    def test_no_module_of_the_app_imports_itself_back(self) -> None:
        # A circle of imports (hub <-> metrics, resources <-> views) hides which module
        # is the lower layer; imports inside functions and under TYPE_CHECKING count too.
        self.assertEqual(_import_cycles(), [])


#: The names of paintbrush.metrics's structured log lines.
_LOG_LINES = {"paintbrush.refused", "paintbrush.resync"}


def _docstrings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))]
    return [doc for node in nodes if (doc := ast.get_docstring(node))]


def _resolves(name: str) -> bool:
    """``paintbrush.a.b.c``: the longest importable prefix, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attribute in parts[cut:]:
                target = getattr(target, attribute)
        except AttributeError:
            return False
        return True
    return False


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_cycles() -> list[list[str]]:
    """Strongly connected groups of more than one module, in the app's import graph."""
    paths = {_module_name(p): p for p in (ROOT / "paintbrush").rglob("*.py") if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        imported: set[str] = set()
        for statement in ast.walk(ast.parse(path.read_text())):
            if isinstance(statement, ast.ImportFrom):
                level = statement.level
                base = package.split(".")[: len(package.split(".")) - level + 1] if level else []
                source = ".".join([*base, statement.module] if statement.module else base)
                imported.update([source, *(f"{source}.{alias.name}" for alias in statement.names)])
            elif isinstance(statement, ast.Import):
                imported.update(alias.name for alias in statement.names)
        # A package's own parents are not dependencies (``from . import x`` names x).
        graph[module] = {m for m in imported if m in paths and m != module and not module.startswith(m + ".")}
    # Tarjan's strongly connected components.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles
