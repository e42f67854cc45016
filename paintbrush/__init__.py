"""Paintbrush: real-time Django. Commands go in through REST, changes come out over WebSocket.

Importing this package loads nothing: the public API lives in its modules
(``paintbrush.resources``, ``paintbrush.models``, ``paintbrush.documents``), and
``paintbrush.__version__`` is looked up when first read.
"""

from __future__ import annotations

__all__ = ["__version__"]

_DISTRIBUTION = "paintbrush-django"


def _version() -> str:
    # pyproject.toml holds the version. In a checkout (an editable install included)
    # it is read from there, so an older copy installed beside it cannot answer;
    # an installed package answers from its metadata, written from the same field.
    from pathlib import Path

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        with pyproject.open("rb") as file:
            project = tomllib.load(file).get("project", {})
        if project.get("name") == _DISTRIBUTION:
            return str(project["version"])
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(_DISTRIBUTION)
    except PackageNotFoundError:  # copied into a project by hand
        return "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        value = _version()
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
