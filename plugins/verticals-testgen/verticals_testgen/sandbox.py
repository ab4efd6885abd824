"""Run untrusted code (the target module and candidate tests) in a contained subprocess.

Layers, from the outside in (each applied where the machine supports it;
:func:`protections` says which were active and is stored on every result):

1. **Namespaces** (``unshare``): a new network namespace (no interface but a
   down loopback: nothing can be reached), a new PID namespace (the sandbox
   cannot see or signal outside processes; when it ends, every process it
   started is killed), and a mount namespace in which every file system is
   re-mounted read-only except the sandbox directory.
2. **Unprivileged user**: when the parent runs as root, the sandbox drops to
   ``nobody`` (uid 65534), so file permissions and ``RLIMIT_NPROC`` apply.
3. **rlimits**: CPU seconds, address space (memory), file size, number of
   processes (fork bombs), no core dumps.
4. **Wall-clock timeout**: the whole process group is killed.
5. **Scrubbed environment**: only a minimal allowlist (PATH, LANG, HOME and
   TMPDIR pointing into the sandbox): no secrets, tokens or proxies.
6. **Audit hook** inside the interpreter (``harness.install_guard``): blocks
   writes outside the sandbox directory, process creation, sockets, ctypes,
   signals to other processes and reads of ``/proc/*/environ``.

Layers 1-2 are OS-enforced; layer 6 is best effort (native code can bypass
an audit hook), which is why it is not the only one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HARNESS = Path(__file__).with_name("harness.py")
NOBODY = 65534
ENV_ALLOWLIST = ("LANG", "LC_ALL", "TZ")


@dataclass
class Limits:
    cpu_seconds: int = 60
    memory_mb: int = 2048
    file_size_mb: int = 64
    processes: int = 64
    wall_seconds: float = 90.0
    test_timeout: float = 5.0


@dataclass
class RunResult:
    events: list[dict[str, Any]]
    returncode: int
    killed: str | None  # "timeout" | "cpu" | "memory" | "signal N" | None
    seconds: float
    stderr: str = ""
    protections: dict[str, bool] = field(default_factory=dict)


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.cache
def protections() -> dict[str, bool]:
    """Which isolation layers this machine supports (probed once per process)."""
    is_root = os.geteuid() == 0
    unshare = shutil.which("unshare")
    setpriv = shutil.which("setpriv")
    disabled = os.environ.get("VERTICALS_TESTGEN_NO_NAMESPACES", "").lower() in {"1", "true", "yes"}
    namespaces = False
    if unshare and sys.platform.startswith("linux") and not disabled:
        flags = "-mnpf" if is_root else "-rmnpf"
        namespaces = _works([unshare, flags, "--mount-proc", "--kill-child", "--", "sh", "-c",
                             "mount -o remount,bind,ro / && true"])
    drop_user = bool(is_root and setpriv and _works([setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}",
                                                       "--clear-groups", sys.executable, "-c", "pass"]))
    return {
        "network_namespace": namespaces,
        "pid_namespace": namespaces,
        "read_only_filesystem": namespaces,
        "unprivileged_user": drop_user,
        "rlimits": True,
        "wall_timeout": True,
        "scrubbed_environment": True,
        "audit_hook": True,
        "socket_stub": True,
    }


def _readable_by_others(path: Path) -> bool:
    try:
        for part in [path, *path.parents]:
            mode = part.stat().st_mode
            if part.is_dir() and not mode & 0o001:
                return False
        return bool(path.stat().st_mode & 0o004)
    except OSError:
        return False


def _count_user_processes() -> int:
    uid = os.getuid()
    count = 0
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        count += 1
                except OSError:
                    pass
    except OSError:
        return 0
    return count


def _preexec(limits: Limits, nproc: int):
    def apply() -> None:
        cpu = limits.cpu_seconds
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        memory = limits.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        size = limits.file_size_mb * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return apply


# Re-mount every file system read-only except the sandbox (bound onto itself
# first, so it becomes its own writable mount), /proc, /sys and /dev.
_MOUNT_SCRIPT = r"""
set -e
mount --bind "$SANDBOX" "$SANDBOX"
awk '{print $2}' /proc/self/mounts | sort -r | while read -r mp; do
  case "$mp" in
    "$SANDBOX"|/proc|/proc/*|/sys|/sys/*|/dev|/dev/pts) continue ;;
  esac
  mount -o remount,bind,ro "$mp" 2>/dev/null || true
done
"""


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
    """One temporary directory in which harness runs happen; remove it with :meth:`close`."""

    def __init__(self, limits: Limits | None = None, prefix: str = "vtg-"):
        self.limits = dataclasses.replace(limits) if limits else Limits()
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        (self.dir / "tmp").mkdir()
        cache = hypothesis_cache()
        if cache is not None:
            shutil.copytree(cache / "unicode_data", self.dir / ".hypothesis" / "unicode_data")
        self.layers = dict(protections())
        self._runs = 0

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text, encoding="utf-8")
        return path

    def reset(self, keep: tuple[str, ...] = ()) -> None:
        """Empty the sandbox directory between runs (what one candidate wrote cannot affect the next)."""
        for child in self.dir.iterdir():
            if child.name in keep or child.name in ("tmp", ".hypothesis"):
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        shutil.rmtree(self.dir / "tmp", ignore_errors=True)
        (self.dir / "tmp").mkdir()

    def run(self, config: dict[str, Any], target_paths: list[str] | None = None) -> RunResult:
        """Run the harness with ``config``; return its recorded events."""
        self._runs += 1
        record = f"record{self._runs}.jsonl"
        config = {**config, "sandbox": str(self.dir), "record": record}
        config_path = self.write(f"config{self._runs}.json", json.dumps(config))
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.dir), "TMPDIR": str(self.dir / "tmp"),
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        for name in ENV_ALLOWLIST:
            if name in os.environ and name != "LANG":
                env[name] = os.environ[name]
        python = [sys.executable, "-I", str(HARNESS), str(config_path)]
        layers = dict(self.layers)
        drop = layers["unprivileged_user"] and all(
            _readable_by_others(Path(p)) for p in [HARNESS, Path(sys.executable).resolve(), *(target_paths or [])])
        layers["unprivileged_user"] = drop
        if drop:
            os.chown(self.dir, NOBODY, NOBODY)
            for path in self.dir.rglob("*"):
                os.chown(path, NOBODY, NOBODY)
            python = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *python]
        if layers["network_namespace"]:
            flags = "-mnpf" if os.geteuid() == 0 else "-rmnpf"
            script = _MOUNT_SCRIPT + "exec " + " ".join(shlex.quote(p) for p in python)
            command = ["unshare", flags, "--mount-proc", "--kill-child", "--", "sh", "-c", script]
            env["SANDBOX"] = str(self.dir)
        else:
            command = python
        nproc = self.limits.processes if drop or os.geteuid() == 0 else _count_user_processes() + self.limits.processes
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                   preexec_fn=_preexec(self.limits, nproc))
        killed = None
        try:
            _, stderr = process.communicate(timeout=self.limits.wall_seconds)
        except subprocess.TimeoutExpired:
            killed = "timeout"
            _kill_group(process)
            _, stderr = process.communicate()
        seconds = time.perf_counter() - started
        code = process.returncode
        if killed is None and code is not None and code < 0:
            number = -code
            killed = {signal.SIGXCPU: "cpu", signal.SIGKILL: "killed"}.get(number, f"signal {number}")
        elif killed is None and code in (137, 152):  # shell-reported SIGKILL / SIGXCPU of the exec'd child
            killed = "cpu" if code == 152 else "killed"
        _kill_group(process)
        events = []
        record_path = self.dir / record
        if record_path.exists():
            for line in record_path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        text = stderr.decode("utf-8", errors="replace")[-2000:] if stderr else ""
        if killed is None and "MemoryError" in text:
            killed = "memory"
        log.debug("sandbox run %s: %.2fs, %d events, killed=%s", config.get("mode"), seconds, len(events), killed)
        return RunResult(events, code if code is not None else -1, killed, seconds, text, layers)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
