"""The shipped client as a packaged app serves it: collectstatic with hashed names,
and the import map of {% paintbrush_importmap %}."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.template import Context, Template
from django.test import SimpleTestCase, override_settings

from paintbrush.templatetags.paintbrush import MODULES

STATIC_DIR = Path(__file__).resolve().parent.parent / "paintbrush" / "static" / "paintbrush"


class StaticTests(SimpleTestCase):
    def test_every_shipped_module_is_in_the_import_map_and_vice_versa(self) -> None:
        shipped = {p.stem for p in STATIC_DIR.glob("*.js")}
        self.assertEqual(shipped, set(MODULES))

    def test_relative_imports_name_shipped_modules(self) -> None:
        for path in STATIC_DIR.glob("*.js"):
            for target in re.findall(r'from\s+"\./([\w-]+)\.js"', path.read_text()):
                self.assertIn(target, MODULES, f"{path.name} imports ./{target}.js")

    def test_collectstatic_with_the_manifest_storage_finds_every_file(self) -> None:
        with tempfile.TemporaryDirectory() as root:
            storages = {
                "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
            }
            with override_settings(STATIC_ROOT=root, STORAGES=storages, DEBUG=False):
                call_command("collectstatic", interactive=False, verbosity=0)
                manifest = json.loads((Path(root) / "staticfiles.json").read_text())["paths"]
                for module in MODULES:
                    self.assertIn(f"paintbrush/{module}.js", manifest)
                html = Template("{% load paintbrush %}{% paintbrush_importmap %}").render(Context())
                imports = json.loads(re.search(r">(.*)</script>", html).group(1))["imports"]  # type: ignore[union-attr]
                self.assertEqual(imports["paintbrush"], "/static/" + manifest["paintbrush/index.js"])
                self.assertEqual(imports["/static/paintbrush/live.js"], "/static/" + manifest["paintbrush/live.js"])

    def test_the_tag_emits_an_import_map_for_the_finders_files(self) -> None:
        html = Template("{% load paintbrush %}{% paintbrush_importmap %}").render(Context())
        self.assertTrue(html.startswith('<script type="importmap">'))
        imports = json.loads(html.removeprefix('<script type="importmap">').removesuffix("</script>"))["imports"]
        self.assertEqual(imports["paintbrush"], "/static/paintbrush/index.js")
        for module in MODULES:
            self.assertIsNotNone(finders.find(f"paintbrush/{module}.js"), module)
