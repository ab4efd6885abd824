"""Moved: ``verticals train`` and the model-store commands are :mod:`verticals.cli.train`; this name is kept
for old imports (``verticals.builtin`` registers the commands through it)."""

from verticals.cli.train import *  # noqa: F403
from verticals.cli.train import check_gates, parse_gates, register  # noqa: F401
