"""Moved: the REST API's tables and their repository are :mod:`verticals.api.store`.

Kept only so that old imports keep working while they are switched; the core itself never imports this module.
"""

from verticals.api.store import *  # noqa: F403
from verticals.api.store import __all__  # noqa: F401
