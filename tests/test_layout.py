"""The README's layout table is the tree: every module of the app is listed, and every
listed path exists (a newcomer finds "where is a delta built" from it)."""

from __future__ import annotations

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
