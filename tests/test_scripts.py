"""The README's demo command, scripts/demo, as far as a test can run it without
installing anything: its manage.py steps, in its order and its environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parent.parent


class DemoScriptTests(SimpleTestCase):
    def test_the_demo_script_s_manage_py_steps_succeed_in_its_environment(self) -> None:
        script = (ROOT / "scripts" / "demo").read_text()
        lines = [line.strip() for line in script.splitlines() if line.strip() and not line.startswith("#")]
        exports = dict(re.findall(r'^export (\w+)="\$\{\w+:-(.*?)\}"$', "\n".join(lines), flags=re.M))
        steps = [line.split("manage.py ", 1)[1] for line in lines if "manage.py" in line and "runserver" not in line]
        self.assertEqual(steps, ["migrate --noinput", "demo_data"])
        # Every export comes before the first step: demo_data needs debug mode.
        first_step = next(i for i, line in enumerate(lines) if "manage.py" in line)
        self.assertTrue(all(i < first_step for i, line in enumerate(lines) if line.startswith("export ")))
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_DEBUG", "REDIS_URL"}}
            env.update(exports, DATABASE_URL=f"sqlite:///{tmp}/demo.sqlite3", DJANGO_SETTINGS_MODULE="project.settings")
            for step in steps:
                done = subprocess.run(
                    [sys.executable, "manage.py", *step.split()],
                    check=False,
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                self.assertEqual(done.returncode, 0, f"manage.py {step}: {done.stderr[-2000:]}")
