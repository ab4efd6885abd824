"""The hook specifications of the plugin contract (kept here for the plugins and tests that import them).

They live in :mod:`verticals.contract`, with what each failure does and the order of the calls; this module
re-exports them, so ``manager.add_hookspecs(verticals.hookspecs)`` and ``from verticals.hookspecs import
hookimpl`` keep working. Implement a hook with ``@verticals.hookimpl`` on a function of the same name in the
module your distribution registers under the entry-point group ``verticals``; a misspelled hook name is
rejected when the plugin loads. Each hook is documented in ``docs/plugins.md`` too (a test checks it).
"""

from __future__ import annotations

from verticals.contract import (
    finish_items,
    hookimpl,
    hookspec,
    job_finished,
    job_submitted,
    prepare_items,
    register_commands,
    register_models,
    register_tasks,
)

__all__ = [
    "finish_items",
    "hookimpl",
    "hookspec",
    "job_finished",
    "job_submitted",
    "prepare_items",
    "register_commands",
    "register_models",
    "register_tasks",
]
