"""verticals-testgen plugin: registers the ``testgen.generate`` task."""

from __future__ import annotations

from verticals import hookimpl
from verticals_testgen.generate import GenerateTests


@hookimpl
def register_tasks(register):
    register(GenerateTests)
