"""Run untrusted code (the target module and candidate tests) in the platform's jail (:mod:`verticals.jail`).

Every harness run — importing the target, exploring it, running candidate tests — is a fresh process tree in
a bubblewrap jail: all namespaces unshared, an unprivileged uid, no capabilities, a seccomp filter, a
read-only view of the interpreter and the target only, a private writable work folder, rlimits and a wall
clock (docs/security.md, "The code jail"). There is no unconfined fallback: without bubblewrap the task
fails with :class:`verticals.jail.JailUnavailable` and says how to install it.

Inside, the harness also installs a Python audit hook (``harness.install_guard``) as an extra layer that
turns obvious attempts into clear test failures; it is not the boundary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verticals.jail import Jail, JailLimits, JailUnavailable, private_dir, read_output, remove_private_dir, verify

log = logging.getLogger(__name__)

HARNESS = Path(__file__).with_name("harness.py")
RECORD_MAX_BYTES = 4 * 2**20  # a run's record file: at most this much is read (and parsed) by the host
ENV_ALLOWLIST = ("LANG", "LC_ALL", "TZ")
__all__ = ["JailUnavailable", "Limits", "RunResult", "Sandbox", "protections"]


@dataclass
class Limits:
    cpu_seconds: int = 60
    memory_mb: int = 2048
    file_size_mb: int = 64
    processes: int = 64
    wall_seconds: float = 90.0
    test_timeout: float = 5.0
    # the job's cancellation (RunContext.cancelled): a jailed run ends, and no new one starts, once it is true
    cancelled: Callable[[], bool] | None = field(default=None, compare=False, repr=False)

    def jail_limits(self) -> JailLimits:
        """The jail's limits, capped at the server maxima (``VERTICALS_JAIL_MAX_*``) whatever a job asked for."""
        return JailLimits(memory_mb=self.memory_mb, cpu_seconds=self.cpu_seconds, wall_seconds=self.wall_seconds,
                          processes=self.processes, file_size_mb=self.file_size_mb).clamped()


@dataclass
class RunResult:
    events: list[dict[str, Any]]
    returncode: int
    killed: str | None  # "timeout" | "cpu" | "memory" | "killed" | "signal N" | None
    seconds: float
    stderr: str = ""
    protections: dict[str, object] = field(default_factory=dict)


def protections() -> dict[str, object]:
    """The jail layers observed on this machine (:func:`verticals.jail.verify`); raises if there is no jail."""
    return verify()


def _cache_root() -> Path:
    configured = os.environ.get("VERTICALS_TESTGEN_CACHE")
    if configured:
        return Path(configured)
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("verticals")) / "testgen"
    except ImportError:
        return Path(tempfile.gettempdir()) / "verticals-testgen-cache"


@functools.cache
def hypothesis_cache() -> Path | None:
    """Hypothesis' Unicode tables, computed once (about 10 s) outside the sandbox and copied into each one.

    Without them every sandbox process would rebuild them for the first ``st.text()``.
    Only Hypothesis' own code runs here, never target or candidate code.
    """
    folder = _cache_root() / "hypothesis"
    if (folder / "unicode_data").is_dir() and any((folder / "unicode_data").rglob("charmap*")):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    code = ("from hypothesis.internal.charmap import charmap, intervals_from_codec\n"
            "charmap(); intervals_from_codec('utf-8'); intervals_from_codec('ascii')")
    env = {"PATH": "/usr/bin:/bin", "HYPOTHESIS_STORAGE_DIRECTORY": str(folder), "HOME": str(folder)}
    try:
        subprocess.run([sys.executable, "-I", "-c", code], env=env, capture_output=True, timeout=120, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("could not prepare Hypothesis' Unicode cache (%s); sandboxed text strategies will be slow",
                    type(error).__name__)
        return None
    return folder


class Sandbox:
    """A private work folder in which jailed harness runs happen; remove it with :meth:`close`."""

    def __init__(self, limits: Limits | None = None, prefix: str = "vtg-"):
        self.limits = dataclasses.replace(limits) if limits else Limits()
        self.layers = dict(protections())  # fail before any work when there is no jail
        # 0700, ours, removed by close() or, if this process is killed, by the next one (verticals.jail.private_dir);
        # the jail gets only work/ below it
        self.root = private_dir(prefix.strip("-") or "sandbox")
        self.dir = self.root / "work"
        self.dir.mkdir()
        (self.dir / "tmp").mkdir()
        cache = hypothesis_cache()
        if cache is not None:
            shutil.copytree(cache / "unicode_data", self.dir / ".hypothesis" / "unicode_data")
        self._runs = 0

    def close(self) -> None:
        remove_private_dir(self.root)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, name: str, text: str) -> Path:
        """Write a file into the work folder, which earlier jailed runs could write too: whatever is at ``name``
        (a symlink a run planted towards a host file) is replaced, never followed."""
        path = self.dir / name
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def reset(self, keep: tuple[str, ...] = ()) -> None:
        """Empty the work folder between runs (what one candidate wrote cannot affect the next)."""
        for child in self.dir.iterdir():
            if child.name in keep or child.name in ("tmp", ".hypothesis"):
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        tmp = self.dir / "tmp"
        if tmp.is_symlink() or (tmp.exists() and not tmp.is_dir()):
            tmp.unlink()
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()

    def run(self, config: dict[str, Any], target_paths: list[str] | None = None, hash_seed: int = 0) -> RunResult:
        """Run the harness with ``config`` in a fresh jail; return its recorded events.

        ``target_paths``: the folders the target needs on ``sys.path`` (shown read-only, nothing else is).
        ``hash_seed``: ``PYTHONHASHSEED`` of the run (a second run with another seed catches tests that
        depend on set or dict order).
        """
        self._runs += 1
        cancelled = self.limits.cancelled
        if cancelled is not None and cancelled():
            return RunResult([], -1, "cancelled", 0.0, "", dict(self.layers))
        record = f"record{self._runs}.jsonl"
        config = {**config, "sandbox": str(self.dir), "record": record}
        config_path = self.write(f"config{self._runs}.json", json.dumps(config))
        env = {"HOME": str(self.dir), "TMPDIR": str(self.dir / "tmp"), "PYTHONHASHSEED": str(int(hash_seed))}
        env.update({name: os.environ[name] for name in ENV_ALLOWLIST if name in os.environ and name != "LANG"})
        jail = Jail(self.dir, read_only=[Path(p) for p in target_paths or []], files={str(HARNESS): HARNESS},
                    limits=self.limits.jail_limits())
        result = jail.run([sys.executable, "-I", str(HARNESS), str(config_path)], env=env, cancelled=cancelled)
        events, problem = _read_events(self.dir, record)
        text = result.stderr.decode("utf-8", errors="replace")[-2000:]
        if problem:
            text = f"{text}\n[{problem}]"
        killed = result.killed
        if killed is None and "MemoryError" in text:
            killed = "memory"
        log.debug("sandbox run %s: %.2fs, %d events, killed=%s", config.get("mode"), result.seconds, len(events),
                  killed)
        return RunResult(events, result.returncode, killed, result.seconds, text, dict(result.layers))


def _read_events(folder: Path, record: str) -> tuple[list[dict[str, Any]], str | None]:
    """The events a jailed run recorded, read through the jail's one bounded reader (no symlink, no FIFO or
    device, at most RECORD_MAX_BYTES, a deadline); lines that are not JSON objects are skipped. A refused or
    truncated record gives the events read so far and a note."""
    try:
        found = read_output(folder / record, within=folder, max_bytes=RECORD_MAX_BYTES, timeout=10.0)
    except FileNotFoundError:
        return [], None
    except OSError as error:  # JailOutputRefused, TimeoutError
        return [], f"record file refused: {error.strerror or type(error).__name__}"
    lines = found.data.decode("utf-8", errors="replace").splitlines()
    if found.truncated and lines:
        lines.pop()  # cut in the middle
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, f"record file cut at {RECORD_MAX_BYTES} bytes" if found.truncated else None
