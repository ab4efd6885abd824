"""What an expected error means to whoever made the request, whatever the front end: one table.

Each error the service layer raises for a request it refuses has one :class:`Meaning`: its HTTP status
(the REST API's answer, and ``VerticalsError.status_code`` in the SDK, in-process and over REST alike) and
the CLI's exit code. The front ends only read it:

- the REST API (:mod:`verticals.api.errors`) answers ``meaning.status`` with the message as problem details;
- the SDK in-process (:mod:`verticals.client`) raises ``VerticalsError`` / ``InputRefused`` with that status;
- the CLI (:func:`verticals.cli.common._handle`) prints one ``error:`` line and exits ``meaning.exit_code``.

They still choose their own *words* (an option's spelling, an endpoint to call next); the status and exit
code come from here. :data:`TABLE` holds the errors of the core and of the plugin machinery; an error defined
above the core (the REST API's tenancy: :class:`~verticals.tenancy.quotas.QuotaExceeded`,
:class:`~verticals.tenancy.tenants.TenantError`), which the core cannot import, carries its own
``meaning`` class attribute beside its definition. :func:`meaning_of` reads both, most specific class first.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["Meaning", "expected_errors", "meaning_of", "table"]


@dataclass(frozen=True)
class Meaning:
    """``status``: the HTTP status; ``exit_code``: the CLI's; ``operator``: the server's operator has to fix
    it (the API logs it at ERROR); ``detail``: what a caller of the REST API is told instead of the message
    (which is for the operator's eyes: it names settings or server paths)."""

    status: int
    exit_code: int = 2
    operator: bool = False
    detail: str | None = None


@functools.cache
def table() -> tuple[tuple[type[BaseException], Meaning], ...]:
    """Error class -> meaning, for the errors of the core and the plugin machinery (built on first use:
    reading it imports the modules that define them)."""
    from verticals.core.evaluation.scoring import EvalError
    from verticals.core.io import InputError
    from verticals.core.jobs.engine import JobError, StoreFull
    from verticals.core.jobs.executor import ExecutorUnavailable
    from verticals.core.jobs.predict import TooManyItems
    from verticals.core.jobs.service import JobConflict, JobNotFound
    from verticals.core.models.sources import ModelUnavailable
    from verticals.core.store.db import DatabaseNotReady
    from verticals.core.store.secrets import SecretKeyError
    from verticals.registry import HookError, PluginError

    return (
        # the request cannot be done as asked: the message says what to change
        (JobError, Meaning(422)),  # bad parameters, unknown column, an unreadable submission...
        (InputError, Meaning(422)),  # an input file that cannot be read as asked
        (EvalError, Meaning(422)),  # no evaluator, no gold column...
        (PluginError, Meaning(422)),  # an unknown (or quarantined) task, a bad registration
        (HookError, Meaning(500, operator=True, detail="a plugin of the server failed; its operator finds which "
                                                       "in the server's log")),  # a plugin's bug
        (TooManyItems, Meaning(413)),  # more items than a synchronous predict takes
        # the job is not there, or not in a state that allows this
        (JobNotFound, Meaning(404)),
        (JobConflict, Meaning(409)),  # retry of a job still queued or running, delete of a running job...
        # the server cannot do it now: the operator's to fix, or to wait for
        (StoreFull, Meaning(507, operator=True)),  # the database's disk is full
        (ExecutorUnavailable, Meaning(503)),  # the broker cannot be reached (the message says what to do)
        (ModelUnavailable, Meaning(503, operator=True, detail="a model this task needs cannot be loaded on the "
                                                              "server now; tell its operator")),  # names paths
        (DatabaseNotReady, Meaning(503, operator=True, detail="the server's database is not ready; tell its "
                                                              "operator")),  # not at this code's revision
        (SecretKeyError, Meaning(503, operator=True, detail="the server cannot encrypt secret parameters now "
                                                            "(server key problem); tell its operator")),
    )


def meaning_of(error: BaseException) -> Meaning | None:
    """The meaning of ``error``: its class's (or the closest base class's) in :func:`table` or its
    ``meaning`` attribute; None for an error that is not expected (a bug: it propagates)."""
    rows = dict(table())
    for cls in type(error).__mro__:
        if cls in rows:
            return rows[cls]
        carried = cls.__dict__.get("meaning")
        if isinstance(carried, Meaning):
            return carried
    return None


def expected_errors() -> tuple[type[BaseException], ...]:
    """The classes of :func:`table` (the API registers one handler for each)."""
    return tuple(cls for cls, _ in table())
