"""What every command group shares: user errors and how they are printed (the consoles, ``_fail`` and
``_joined`` live in :mod:`verticals.cli.console`, re-exported here), option parsing, the progress bar, running a
job with it, and rendering results and summaries.

Data goes to stdout (``out``); progress, tables and messages go to stderr (``err``), so
``verticals jobs results JOB > out.jsonl`` stays clean.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Column
from rich.text import Text

from verticals.cli.console import _Console, _fail, _joined, err, out  # noqa: F401  (re-exported: console.py)
from verticals.cli.render import rate_text


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


# -- shared helpers ----------------------------------------------------------

def _registry():
    from verticals.registry import get_registry

    return get_registry()


def _store():
    from verticals.core.store import open_store

    return open_store()


def _parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"bad {what} {pair!r}: expected NAME=VALUE")
        parsed[key.strip()] = value
    return parsed


def _coerce(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _is_flag(task_cls, key: str) -> bool:
    """Whether the task parameter ``key`` is a bool (``--NAME`` alone means true)."""
    import typing

    field = task_cls.Params.model_fields.get(key) if task_cls is not None else None
    if field is None:
        return task_cls is None  # without a task to ask, keep the old reading (a bare flag is true)
    annotation = field.annotation
    return annotation is bool or bool in typing.get_args(annotation)


def _extra_params(args: list[str], task_cls=None) -> dict[str, Any]:
    """``--mode surrogate --purge-x`` style extra options -> task params.

    With ``task_cls``, an option without a value (``--threshold`` then nothing, or another option) is
    an error unless the parameter is a bool.
    """
    params: dict[str, Any] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("--") or arg == "--":
            raise UserError(f"unexpected argument {arg!r}")
        name, sep, value = arg[2:].partition("=")
        key = name.replace("-", "_")
        if sep:
            params[key] = _coerce(value)
        elif index + 1 < len(args) and not args[index + 1].startswith("--"):
            params[key] = _coerce(args[index + 1])
            index += 1
        elif _is_flag(task_cls, key):
            params[key] = True
        else:
            raise UserError(f"--{name} needs a value, e.g. --{name} VALUE or --{name}=VALUE")
        index += 1
    return params


def _secret_params(task_cls, params: dict[str, Any]) -> dict[str, Any]:
    """Secret task parameters (typed ``SecretStr``) from ``--NAME-file PATH`` or the environment variable the
    parameter declares (``json_schema_extra={"env": ...}``, e.g. ``VERTICALS_SURROGATE_KEY``)."""
    from verticals.core.store.secrets import secret_fields

    for name in secret_fields(task_cls.Params):
        option = "--" + name.replace("_", "-")
        extra = task_cls.Params.model_fields[name].json_schema_extra
        env = extra.get("env") if isinstance(extra, dict) else None
        file = params.pop(f"{name}_file", None)
        if file is not None:
            if name in params:
                raise UserError(f"give {option} or {option}-file, not both")
            try:
                value = Path(str(file)).expanduser().read_text(encoding="utf-8").strip("\r\n")
            except OSError as error:
                raise UserError(f"cannot read {option}-file {file}: {error.strerror}") from None
            if not value:
                raise UserError(f"{option}-file {file} is empty")
            params[name] = value
        elif name in params:
            params[name] = params[name] if isinstance(params[name], str) else json.dumps(params[name])
            err.print(f"[yellow]warning: {option} on the command line can be seen by other users of this machine "
                      f"(ps) and stays in your shell history; prefer {option}-file PATH"
                      + (f" or the environment variable {env}" if env else "") + "[/yellow]")
        elif env and os.environ.get(env):
            params[name] = os.environ[env]
    return params


class RateColumn(ProgressColumn):
    """Items per second: while it runs, Rich's recent speed; once finished, the items this bar saw done over
    its elapsed time (Rich's speed from two or three updates said 5.5 items/s for 3 hints in two minutes)."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        if task.finished and task.elapsed:
            speed = max(0.0, float(task.completed) - float(task.fields.get("start_done") or 0)) / task.elapsed
        if not speed:
            return Text("-- items/s", style="cyan")
        return Text(rate_text(speed), style="cyan")  # long items (testgen, hints): min/item, not 0.0 items/s


class TimeColumn(TimeRemainingColumn):
    """The time left while the bar runs; once finished, the time it took (not a remaining 0:00:00)."""

    def render(self, task) -> Text:
        if task.finished and task.elapsed is not None:
            minutes, seconds = divmod(int(task.elapsed), 60)
            hours, minutes = divmod(minutes, 60)
            return Text(f"in {hours}:{minutes:02d}:{seconds:02d}", style="progress.elapsed")
        return super().render(task)


class ItemsColumn(ProgressColumn):
    """Items finished of the total (``M/N``): the share the running items reported moves the bar, not this."""

    def render(self, task) -> Text:
        done = task.fields.get("items_done")
        done = int(task.completed) if done is None else int(done)
        total = "?" if task.total is None else f"{int(task.total)}"
        return Text(f"{done}/{total}", style="progress.download")


class NoteColumn(ProgressColumn):
    """The running item's own status line (``RunContext.progress`` note), cut to the room left."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1, min_width=8))

    def render(self, task) -> Text:
        return Text(str(task.fields.get("note") or ""), style="dim", no_wrap=True, overflow="ellipsis")


NARROW = 60  # under this many columns, lines are laid out for a narrow terminal


def _progress(console: Console | None = None) -> Progress:
    """The job bar: task, bar, items done of total, rate, ETA, and the note of the running item. Under
    ``NARROW`` columns the rate is left out and the task name cut, so the bar stays one line."""
    console = console or err
    narrow = console.width < NARROW
    name = TextColumn("[bold]{task.description}", table_column=Column(
        no_wrap=True, overflow="ellipsis", max_width=max(8, console.width // 3) if narrow else None))
    rate = [] if narrow else [RateColumn(table_column=Column(no_wrap=True))]
    return Progress(name, BarColumn(bar_width=6 if narrow else 12), ItemsColumn(table_column=Column(no_wrap=True)),
                    *rate, TimeColumn(table_column=Column(no_wrap=True)), NoteColumn(), console=console,
                    transient=False, expand=True)


def _copyable(intro: str, command: str, console: Console | None = None) -> None:
    """A command or a path the user may copy: after ``intro`` on the same line when both fit, else on a line of
    its own; never broken by the console (``soft_wrap``: a terminal narrower than it folds it, a copy is whole)."""
    console = console or err
    if len(intro) + 1 + len(command) <= console.width:
        console.print(Text(f"{intro} {command}"), soft_wrap=True)
    else:
        console.print(Text(intro))
        console.print(Text(command), soft_wrap=True)


def _show_item_progress(progress: Progress, bar: Any, done: float, running: dict[str, Any] | None) -> None:
    """Show ``done`` items plus what the running items report of themselves (the job summary's
    ``item_progress``: ``done`` in items, ``note``)."""
    partial = float(running.get("done") or 0) if running else 0.0
    progress.update(bar, completed=done + partial, items_done=done, note=(running or {}).get("note") or "")


ITEM_PROGRESS_POLL = 1.0  # seconds between two reads of the running items' progress (stored at most 1/s)


def _service():
    """The job service over the configured executor (local; Celery when VERTICALS_BROKER_URL is set), built on
    first use: reading, cancelling and exporting never need the executor. The first call of a process also
    fires the ``job_finished`` events another process left pending (the outbox is delivered at least once) and
    removes submissions that died half-way (``JobService.deliver_pending``)."""
    from verticals.workers import job_service

    service = job_service(_store(), _registry())
    if not _delivered:
        _delivered.append(True)
        service.deliver_pending(sweep=True)
    return service


_delivered: list[bool] = []


class _JobBar:
    """The progress bar of a job a command runs: shown from :meth:`show` (the job's id known: its task, total,
    items done) until the ``with`` block ends; :meth:`advance` is the service's ``on_progress``.

    The bar counts finished items and, read from the job once a second, the progress the running items report
    of themselves with its note (``RunContext.progress``): a testgen module or a batch of hints moves the bar
    while it runs, here or on a worker. ``quiet``: no bar."""

    def __init__(self, service, quiet: bool = False):
        self.service, self.quiet = service, quiet
        self.progress: Progress | None = None
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._watcher: threading.Thread | None = None
        self._done = 0.0

    def __enter__(self) -> _JobBar:
        return self

    def show(self, job_id: str) -> None:
        if self.quiet or self.progress is not None:
            return
        summary = self.service.summary(job_id)
        self.progress = progress = _progress()
        progress.start()
        self.bar = progress.add_task(summary["task"], total=summary["total"], completed=summary["done"], note="",
                                     start_done=summary["done"])
        self._done = summary["done"]

        def poll() -> None:
            while not self._stop.wait(ITEM_PROGRESS_POLL):
                try:
                    current = self.service.summary(job_id)
                except Exception:  # a display: the next read may work
                    continue
                with self._lock:
                    if current["done"] >= self._done:  # not a report older than the last results
                        _show_item_progress(progress, self.bar, self._done, current.get("item_progress"))

        self._watcher = threading.Thread(target=poll, name="verticals-progress", daemon=True)
        self._watcher.start()

    def advance(self, count: int) -> None:
        if self.progress is None:
            return
        with self._lock:
            self._done += count
            _show_item_progress(self.progress, self.bar, self._done, None)  # the results replaced the report

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(5)
        if self.progress is not None:
            self.progress.stop()


def _models_used(service) -> None:
    """The models the command loaded, each with the runtime that actually ran it (torch, or onnxruntime when
    `models optimize` kept a variant) and its precision: the line names what answered, not what the settings
    default to."""
    host = service.host
    for name in host.loaded() if host is not None else []:
        source = host.get(name).provenance()
        parts = [f"model {name}:", str(source["source"]), str(source["reference"]), f"on {host.get(name).device}",
                 f"({source.get('runtime', 'torch')} {source['precision']})"]
        err.print(Text.from_markup(_joined([escape(part) for part in parts]), style="dim"))


def _with_progress(service, job_id: str, run: Callable[[Callable[[int], None] | None], str],
                   quiet: bool = False) -> str:
    """``run(on_progress)`` (a resume...) under a progress bar of the job; then the models it loaded."""
    with _JobBar(service, quiet) as bar:
        bar.show(job_id)
        status = run(bar.advance if not quiet else None)
    _models_used(service)
    return status


def _submit_and_start(service, task_cls, input: Path, fmt: str | None, text_column: str | None, fields: list[str],
                      encoding: str | None, params: dict[str, Any], options: dict[str, Any], chunk_size: int | None,
                      *, run: str, on_stored: Callable[[str], None], quiet: bool = False):
    """``JobService.submit_and_start`` over an input file (the service asks the executor first, maps
    --text-column / --field onto the task's fields, stores the job, then runs it as ``run`` says: ``wait`` under
    the job's progress bar). ``on_stored(job_id)`` once the job is stored (the command prints its id)."""
    from verticals.core.io import read_rows

    with _JobBar(service, quiet or run != "wait") as bar:
        def stored(job_id: str) -> None:
            on_stored(job_id)
            bar.show(job_id)

        submitted = service.submit_and_start(
            task_cls.name, read_rows(input, fmt, encoding), run=run, on_stored=stored,
            on_progress=None if quiet else bar.advance, params=params, text_column=text_column, fields=fields,
            options=options, chunk_size=chunk_size, allow_empty=False, file_rows=True, pick="--text-column COLUMN",
            text_option="--text-column", field_option="--field FIELD=COLUMN")
    if run == "wait":
        _models_used(service)
    return submitted


def _task_params(ctx_args: list[str], param: list[str], task_cls) -> dict[str, Any]:
    """Task parameters from extra ``--NAME VALUE`` options and ``--param NAME=VALUE``, secrets included."""
    params = {**_extra_params(list(ctx_args), task_cls),
              **{k: _coerce(v) for k, v in _parse_pairs(param, "--param").items()}}
    return _secret_params(task_cls, params)


def _pending(job_id: str) -> int:
    """The job's pending items (0 when it is gone: withdrawn, deleted)."""
    try:
        return int(_store().summary(job_id)["counts"].get("pending", 0))
    except Exception:
        return 0


def _remote(job_id: str | None) -> bool:
    """Whether this process hands the job's chunks to workers (they go on when it stops)."""
    from verticals.config import broker_url

    return job_id is not None and broker_url() is not None


def _exit_code(status: str) -> int:
    return {"succeeded": 0, "partial": 0, "failed": 1, "cancelled": 130}.get(status, 0)


def _handle(error: BaseException, job_id: str | None = None) -> typer.Exit:
    """An expected error as one ``error:`` line, exiting with its meaning's exit code (one table for every
    front end: :mod:`verticals.core.errors`; 2 for a usage error; Ctrl-C: 130); anything else is a bug and
    raises."""
    from verticals.core.errors import meaning_of
    from verticals.core.jobs.executor import ExecutorUnavailable

    if isinstance(error, typer.Exit):
        return error
    if isinstance(error, KeyboardInterrupt):  # Ctrl-C, kill -INT, kill (SIGTERM): verticals.cli.signals
        from verticals.cli.signals import interrupted

        return interrupted(error, job_id, remote=_remote(job_id))
    if isinstance(error, UserError):
        return _fail(str(error))
    meaning = meaning_of(error)
    if isinstance(error, ExecutorUnavailable) and meaning is not None:  # BrokerUnavailable included
        if job_id is not None and _pending(job_id):  # kept, with items to run: they wait for a later resume
            return _fail(f"{error}; job {job_id} is stored: continue it with `verticals jobs resume {job_id[:12]}` "
                         "once jobs can run", meaning.exit_code)
        return _fail(str(error), meaning.exit_code)
    if meaning is not None:
        return _fail(str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error),
                     meaning.exit_code)
    if isinstance(error, KeyError):
        return _fail(str(error.args[0]) if error.args else str(error))
    from verticals.core.store import storage_problem

    problem = storage_problem(error)  # the database's disk filled up while results were stored
    if problem is not None:
        then = f"continue with `verticals jobs resume {job_id[:12]}`" if job_id else "run the command again"
        return _fail(f"{problem}: free space on the database's disk, then {then}")
    if isinstance(error, OSError):
        where = f" {error.filename}" if error.filename else ""
        return _fail(f"cannot access{where}: {error.strerror or error}")
    raise error
