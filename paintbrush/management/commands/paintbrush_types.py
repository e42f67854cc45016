"""``python manage.py paintbrush_types [-o resources.d.ts]``: TypeScript types of every
resource's items and write bodies, and of the role documents (``docs/contracts.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Write TypeScript declarations of each registered resource's item (from its serializer)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-o", "--output", help="The .d.ts file to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        from paintbrush.contracts import typescript_types

        text = typescript_types()
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stdout.write(f"Wrote {options['output']}.")
        else:
            self.stdout.write(text, ending="")
