"""Stopping a command does not depend on how it was started (verticals.cli.signals).

Each command here is launched the way a non-interactive shell launches ``cmd &``: by a real ``sh``, in the
background, which starts it with SIGINT ignored. ``kill -INT`` must still stop it like Ctrl-C, and ``kill``
(SIGTERM: timeouts, systemd, container runtimes) the same way: finished items kept, the job ``interrupted``
(never left ``running``), the resume hint, exit 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli


def _store():
    from verticals.core.store import open_store

    return open_store()


@pytest.fixture
def fixture_env(use_plugins, monkeypatch):
    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures")
    use_plugins("good")


class Backgrounded:
    """``sh -c 'CMD & echo $!; wait $!; echo "rc=$?"'``: the command in the background of a non-interactive shell
    (SIGINT ignored in it, as POSIX shells do), its pid read from the first line."""

    def __init__(self, *args: str):
        command = " ".join(shlex.quote(part) for part in [sys.executable, "-m", "verticals.cli", *args])
        self.shell = subprocess.Popen(["sh", "-c", f'{command} 2>"$ERR" & echo $!; wait $!; echo "rc=$?"'],
                                      stdout=subprocess.PIPE, text=True, cwd=REPO,
                                      env={**os.environ, "ERR": os.environ["VERTICALS_HOME"] + ".err"})
        self.pid = int(self.shell.stdout.readline())
        self.err_path = os.environ["VERTICALS_HOME"] + ".err"

    def _mask(self, field: str) -> int:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            return next(int(line.split()[1], 16) for line in status if line.startswith(f"{field}:"))

    def catches(self, signum: int) -> bool:
        """Whether the process has a handler for ``signum`` now (SigCgt)."""
        return bool(self._mask("SigCgt") & (1 << (signum - 1)))

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        rest, _ = self.shell.communicate(timeout=timeout)
        code = int(rest.strip().rpartition("rc=")[2])
        with open(self.err_path, encoding="utf-8") as handle:
            return code, handle.read()


def _wait_for(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the command to start its items")


def _some_done() -> bool:
    store = _store()
    return any(store.summary(job.id)["done"] for job in store.list_jobs())


def test_a_non_interactive_shell_starts_background_commands_with_sigint_ignored():
    """The premise of the next tests (POSIX: `cmd &` in a non-interactive shell ignores SIGINT), read on a command
    that keeps the dispositions it was started with (sleep), once it runs (its exec is done)."""
    shell = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    pid = int(shell.stdout.readline())
    try:
        _wait_for(lambda: Path(f"/proc/{pid}/comm").read_text(encoding="ascii").strip() == "sleep", timeout=10)
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            ignored = next(int(line.split()[1], 16) for line in status if line.startswith("SigIgn:"))
        assert ignored & (1 << (signal.SIGINT - 1))
    finally:
        os.kill(pid, signal.SIGKILL)
        shell.wait(timeout=10)


@pytest.mark.parametrize(("signum", "code", "said"), [(signal.SIGINT, 130, "interrupted"),
                                                      (signal.SIGTERM, 143, "stopped by SIGTERM")])
def test_a_backgrounded_run_stops_on_kill_and_resumes_into_its_output(fixture_env, tmp_path, signum, code, said):
    data = tmp_path / "in.txt"
    data.write_text("".join(f"line {i}\n" for i in range(120)), encoding="utf-8")
    output = tmp_path / "out" / "scored.csv"
    output.parent.mkdir()
    run = Backgrounded("run", "fixtures.echo", str(data), "-q", "--sleep", "0.3", "--chunk-size", "120",
                       "-o", str(output))
    # launched as a non-interactive shell launches `cmd &`, with SIGINT ignored (the premise: checked on `sleep` by
    # the test above; read on verticals itself it races with its start, which restores SIGINT at once)
    _wait_for(_some_done)
    os.kill(run.pid, signum)
    returncode, stderr = run.finish()
    store = _store()
    job_id = store.list_jobs()[0].id
    assert returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"error: {said}: finished items are stored; continue with `verticals jobs resume {job_id}`" in stderr
    assert f"it writes {output} when the job is done" in " ".join(stderr.split())
    listed = json.loads(run_cli("jobs", "list", "--json").stdout)
    assert [(job["id"], job["status"]) for job in listed] == [(job_id, "interrupted")]  # never left `running`
    summary = store.summary(job_id)
    assert 0 < summary["done"] < 120 and not output.exists()
    assert max(item.attempts for item in store.iter_items(job_id, status="pending")) == 0  # no crash counted
    resumed = run_cli("jobs", "resume", job_id[:10])
    assert resumed.returncode == 0, resumed.stderr
    assert f"wrote 120 results to {output}" in " ".join(resumed.stderr.split())
    assert output.read_text(encoding="utf-8").count("\n") == 121
    assert store.summary(job_id)["status"] == "succeeded"


def test_a_backgrounded_eval_stops_on_sigterm_and_keeps_nothing(fixture_env, tmp_path):
    data = tmp_path / "labels.csv"
    data.write_text("text,label\n" + "".join(f"shares up {i},positive\n" for i in range(2000)), encoding="utf-8")
    run = Backgrounded("eval", "fixtures.keyword", str(data), "--sleep", "1")  # a batch a second: still running
    _wait_for(_some_done)
    os.kill(run.pid, signal.SIGTERM)
    returncode, stderr = run.finish()
    assert returncode == 143, stderr
    assert "error: stopped by SIGTERM: nothing was scored or stored; run the evaluation again" in stderr
    assert "Traceback" not in stderr
    assert _store().list_jobs() == []  # a half-run evaluation is not left behind


def test_an_uncaught_stop_still_exits_with_the_signal_code(fixture_env, tmp_path):
    """Stopped where no job exists yet (reading an input that never comes): the signal's code and one line."""
    data = tmp_path / "in.txt"
    data.write_text("a\n", encoding="utf-8")
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)  # reading the input blocks until a writer comes: the command is stopped before a job exists
    run = Backgrounded("run", "fixtures.echo", str(fifo), "--format", "txt", "-q")
    _wait_for(lambda: run.catches(signal.SIGTERM))  # its handlers are installed (then it blocks on the input)
    os.kill(run.pid, signal.SIGTERM)  # while it loads the plugins, or waits on the input: the same line
    returncode, stderr = run.finish()
    assert returncode == 143, stderr
    assert "error: stopped by SIGTERM" in stderr and "Traceback" not in stderr
    assert _store().list_jobs() == []


def test_an_interrupted_job_is_cancelled_whole_and_retry_says_to_resume(fixture_env, tmp_path):
    """Nothing runs an interrupted job: cancelling it cancels every pending item at once (it does not wait for a
    running chunk that is not there); retrying it says to resume it."""
    data = tmp_path / "in.txt"
    data.write_text("".join(f"line {i}\n" for i in range(60)), encoding="utf-8")
    run = Backgrounded("run", "fixtures.echo", str(data), "-q", "--sleep", "0.3", "--chunk-size", "60")
    _wait_for(_some_done)
    os.kill(run.pid, signal.SIGINT)
    assert run.finish()[0] == 130
    job_id = _store().list_jobs()[0].id
    retry = run_cli("jobs", "retry", job_id[:10])
    assert retry.returncode == 2 and "is interrupted: resume it" in retry.stderr
    cancelled = run_cli("jobs", "cancel", job_id[:10])
    assert cancelled.returncode == 0, cancelled.stderr
    summary = _store().summary(job_id)
    assert summary["status"] == "cancelled" and not summary["counts"].get("pending")
    resumed = run_cli("jobs", "resume", job_id[:10])
    assert resumed.returncode == 0
    assert "is cancelled: nothing is pending, so there is nothing to resume" in " ".join(resumed.stderr.split())
    assert "cancelled item(s) are not run again" in " ".join(resumed.stderr.split())
