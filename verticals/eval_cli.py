"""Moved: ``verticals eval`` is :mod:`verticals.cli.evaluate`; this name is kept for old imports."""

from verticals.cli.evaluate import *  # noqa: F403
from verticals.cli.evaluate import register  # noqa: F401
