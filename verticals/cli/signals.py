"""How a CLI process stops: Ctrl-C, ``kill -INT``, ``kill`` (SIGTERM) and a closed terminal (SIGHUP) all stop a
command the same way, however the process was started.

- **SIGINT is restored** at start: a launcher may start its children with SIGINT ignored (a non-interactive
  shell does for ``verticals run ... &``, and so do ``make test &`` and many CI runners); Python then keeps it
  ignored, and ``kill -INT`` did nothing.
- **SIGTERM** (what ``kill``, ``timeout``, systemd and container runtimes send) and **SIGHUP** (the terminal
  went away; left alone under ``nohup``, which ignores it) raise :class:`Terminated`, a ``KeyboardInterrupt``:
  the code that keeps a job's finished items on Ctrl-C keeps them here too, the local executor marks the job
  ``interrupted`` (:meth:`~verticals.core.store.Store.mark_interrupted`), and the command prints the resume
  hint (:func:`interrupted`).
- **Exit codes** follow the shell's convention, 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM,
  129 for SIGHUP (:func:`exit_code`), for a command that catches the interrupt and for one that does not
  (Typer turns an uncaught ``KeyboardInterrupt`` into 130; :func:`main_exit_code` corrects it).

Only the main thread receives signals; a job run by ``verticals run`` runs on it (the local executor's
``execute``).
"""

from __future__ import annotations

import signal
from types import FrameType

import typer


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal other than SIGINT (``signum``: SIGTERM, SIGHUP)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


received: list[int] = []
"""The stop signals this process received, in order (the first decides the exit code)."""


def _stop(signum: int, _frame: FrameType | None) -> None:
    received.append(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def install() -> None:
    """SIGINT, SIGTERM (and SIGHUP unless it is ignored, as ``nohup`` leaves it) interrupt the main thread."""
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _stop)


def signum_of(error: BaseException | None = None) -> int:
    """The signal behind an interrupt: ``error``'s own, else the first received, else SIGINT (a Ctrl-C that
    Python's default handler turned into ``KeyboardInterrupt``)."""
    if isinstance(error, Terminated):
        return error.signum
    return received[0] if received else int(signal.SIGINT)


def exit_code(error: BaseException | None = None) -> int:
    """128 + the signal's number: 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP)."""
    return 128 + signum_of(error)


def describe(error: BaseException | None = None) -> str:
    """``interrupted`` for SIGINT, else ``stopped by SIGTERM`` (the signal's name)."""
    signum = signum_of(error)
    return "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"


reported: list[str] = []
"""What was said about the stop (a command that caught it said what it kept); empty: :func:`main_exit_code` says
it."""


def fail(message: str, error: BaseException | None = None) -> typer.Exit:
    """``error: <message>`` and the signal's exit code, for a command that caught the interrupt."""
    from verticals.cli.console import _fail

    reported.append(message)
    return _fail(message, exit_code(error))


def interrupted(error: BaseException, job_id: str | None, remote: bool = False) -> typer.Exit:
    """The one ``error:`` line of a job command stopped by a signal, and its exit code. ``remote``: the job's
    chunks run on workers, which go on without this process."""
    what = describe(error)
    if job_id is None:
        return fail(f"{what} before a job was stored: nothing was kept", error)
    if remote:
        return fail(f"{what}: job {job_id} goes on on the workers; follow it with "
                    f"`verticals jobs status {job_id[:12]}` (stop it with `verticals jobs cancel {job_id[:12]}`)",
                    error)
    output = _output_of(job_id)
    then = f" (it writes {output['path']} when the job is done)" if output else ""
    return fail(f"{what}: finished items are stored; continue with `verticals jobs resume {job_id}`{then}", error)


def _output_of(job_id: str) -> dict | None:
    """The ``-o`` file ``verticals run`` was asked to write (kept in the job's options), if any."""
    from verticals.core.store import open_store

    try:
        output = (open_store().job(job_id).options or {}).get("output")
    except Exception:
        return None
    return output if isinstance(output, dict) and output.get("path") else None


def main_exit_code(code: object) -> object:
    """The exit code of a whole command: Typer ends a command that did not catch the interrupt with 130 whatever
    the signal was, silently; the signal's own code replaces it, and an ``error:`` line says it stopped."""
    if code == 130 and received:
        if not reported:
            from verticals.cli.console import _fail

            _fail(f"{describe()}: stopped before the command finished")
        return exit_code()
    return code
