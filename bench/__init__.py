"""Benchmarks of Paintbrush (run as scripts: see each module's docstring)."""
