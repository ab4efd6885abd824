"""The ``verticals`` command line (Typer + Rich): the root app, and the composition root of a CLI process.

One module per command group:

- :mod:`~verticals.cli.run` ``verticals run``; :mod:`~verticals.cli.jobs` ``verticals jobs ...``;
- :mod:`~verticals.cli.plugins`, :mod:`~verticals.cli.tasks`, :mod:`~verticals.cli.models`, :mod:`~verticals.cli.db`;
- :mod:`~verticals.cli.worker` ``verticals worker``; :mod:`~verticals.cli.serve` ``verticals serve|keys|webhooks``;
  :mod:`~verticals.cli.operations` ``verticals usage`` and ``verticals tenants ...``;
- :mod:`~verticals.cli.evaluate` ``verticals eval``; :mod:`~verticals.cli.train` ``verticals train`` and the model
  store's ``models list|promote|rollback`` (added by the core's own ``register_commands`` hook);
- :mod:`~verticals.cli.common`: what they share (consoles, errors, option parsing, progress, rendering).

Data goes to stdout; progress, tables and messages go to stderr, so
``verticals jobs results JOB > out.jsonl`` stays clean.
"""

from __future__ import annotations

import importlib
import logging
import textwrap
from typing import Annotated, Any

import typer

from verticals import __version__
from verticals.cli import evaluate, operations, serve, signals, worker
from verticals.cli.common import (  # noqa: F401  (kept importable from verticals.cli)
    UserError,
    _coerce,
    _extra_params,
    _fail,
    _handle,
    _parse_pairs,
    _progress,
    _registry,
    _store,
    err,
    out,
)
from verticals.cli.db import db_app
from verticals.cli.jobs import jobs_app
from verticals.cli.models import models_app
from verticals.cli.plugins import plugins_app
from verticals.cli.run import CONTEXT, run
from verticals.cli.tasks import tasks_app


def _help_wraps_between_words() -> None:
    """``--help`` breaks its lines between words only. Click (which Typer vendors as ``typer._click``) wraps help
    with textwrap's defaults, which in a narrow terminal cut a long word (``VERTICALS_BROKER_URL`` as ``VE`` /
    ``RL``) and break at hyphens (``[default: no-`` / ``purge-inputs]``): neither can be read or copied. A word
    longer than its line overflows it whole, as a path does everywhere else in the CLI."""
    for name in ("typer._click._textwrap", "click._textwrap"):  # the one Typer uses, whichever it is
        try:
            module: Any = importlib.import_module(name)
        except ImportError:
            continue
        base = module.TextWrapper
        if getattr(base, "whole_words", False):
            return

        class WholeWords(base):  # type: ignore[misc, valid-type]
            whole_words = True

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.setdefault("break_long_words", False)
                kwargs.setdefault("break_on_hyphens", False)
                super().__init__(*args, **kwargs)

            def _handle_long_word(self, chunks: list[str], line: list[str], length: int, width: int) -> None:
                # click's own cuts the word wherever the line ends; textwrap's keeps it whole on a line of its own
                textwrap.TextWrapper._handle_long_word(self, chunks, line, length, width)

        module.TextWrapper = WholeWords  # click's wrap_text imports it by name at each call
        return


_help_wraps_between_words()
app = typer.Typer(help="verticals: vertical AI tasks on transformer models, as batch jobs.", no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
app.command(context_settings=CONTEXT)(run)
app.add_typer(jobs_app, name="jobs")
app.add_typer(plugins_app, name="plugins")
app.add_typer(tasks_app, name="tasks")
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")


def _print_version(value: bool) -> None:
    if value:
        out.print(f"verticals {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v: INFO logs, -vv: DEBUG.")] = 0,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=_print_version)] = False,
) -> None:
    from rich.logging import RichHandler

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=err, show_path=False)], force=True)
    # libraries that log their own steps at INFO (Alembic: one line per migration check, at every command):
    # -v shows verticals' own INFO lines; their lines need -vv
    for noisy in ("httpx", "httpcore", "urllib3", "filelock", "huggingface_hub", "alembic"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING) if verbose < 2 else level)


def _register_core_commands() -> None:
    """The commands of the worker, the API server, evaluations and operations (each in its own module here)."""
    for module in (worker, serve, evaluate, operations):
        module.register(app)


def _attach_optional(registry) -> None:
    """The built-in parts a CLI process wires in itself: a webhook outbox (on the configured database, opened
    when a job finishes), so that jobs run by ``verticals run`` or ``verticals jobs ...`` still reach the
    tenants' webhooks (the core never imports the tenancy)."""
    try:
        from verticals.tenancy.webhooks import Outbox

        Outbox().attach_to(registry)
    except Exception as error:  # the commands still work; only that part is missing
        err.print(f"[red]warning:[/red] the webhook outbox could not be attached: {error}")


def main() -> None:
    """Entry point (the composition root of a CLI process): load plugins, attach the optional built-in parts,
    let plugins add commands, run. Job events left pending by another process are fired by the first command
    that opens the job store (:func:`verticals.cli.common._service`). Stop signals are installed first
    (:mod:`verticals.cli.signals`): Ctrl-C, ``kill -INT`` and ``kill`` stop any command the same way."""
    signals.install()
    try:
        _start()
    except KeyboardInterrupt as error:  # stopped while the plugins load, before any command began
        signals.fail(f"{signals.describe(error)} while starting: nothing was done", error)
        raise SystemExit(signals.exit_code(error)) from None
    except SystemExit as done:
        raise SystemExit(signals.main_exit_code(done.code)) from None


def _start() -> None:
    _register_core_commands()
    try:
        registry = _registry()
    except Exception as error:
        err.print(f"[red]warning:[/red] plugins could not be loaded: {error}")
        registry = None
    if registry is not None:
        _attach_optional(registry)
        try:
            registry.hook.register_commands(cli=app)
        except Exception as error:
            err.print(f"[red]warning:[/red] plugins could not be loaded: {error}")
    app()
