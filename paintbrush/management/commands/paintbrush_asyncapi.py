"""``python manage.py paintbrush_asyncapi [-o asyncapi.json] [--server ws://host:port]``:
the AsyncAPI 3.0 document of the WebSocket side (``docs/contracts.md``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Write the AsyncAPI 3.0 document of /ws and /ws/doc, from the registered resources and roles."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-o", "--output", help="The file to write (default: standard output).")
        parser.add_argument(
            "--server",
            action="append",
            default=[],
            metavar="URL",
            help="A ws:// or wss:// URL of a server, e.g. ws://localhost:8000 (repeatable).",
        )
        parser.add_argument("--title", default="Paintbrush WebSocket API", help="info.title of the document.")

    def handle(self, *args: Any, **options: Any) -> None:
        from paintbrush.contracts import asyncapi_document

        try:
            document = asyncapi_document(title=options["title"], servers=options["server"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stdout.write(f"Wrote {options['output']}.")
        else:
            self.stdout.write(text, ending="")
