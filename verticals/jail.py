"""Run untrusted code in a jail built on bubblewrap (``bwrap``): the one way verticals runs code it did not write.

What a jailed process gets (docs/security.md, "The code jail", says what each layer stops and what it does not):

- **Namespaces**, all unshared: user, pid, network (only a loopback of its own), ipc, uts, cgroup, mount.
- **An unprivileged identity**: uid/gid 1000 inside, mapped to an unprivileged id outside: the caller's own
  uid when the caller is not root; ``VERTICALS_JAIL_UID`` (default 65534, ``nobody``) when it is. A root caller
  cannot hand its uid to the jail: it builds the mounts in a privileged outer bwrap, drops to the jail uid with
  ``setpriv --no-new-privs`` and starts the real jail (an unprivileged inner bwrap) from there.
- **No capabilities**, ``no_new_privs``, ``--new-session`` (no terminal injection), ``--die-with-parent``,
  further user namespaces disabled (``--disable-userns``).
- **A seccomp filter** (libseccomp through ``pyseccomp``) that denies mount, ptrace, keyctl, bpf, unshare,
  setns, namespace flags on clone, clone3, kernel module/kexec/reboot calls, perf events, userfaultfd and
  packet, netlink and raw sockets.
- **A minimal read-only view**: ``/usr`` (and the ``/bin``, ``/lib*`` links), the interpreter's prefixes, the
  paths the caller lists; a writable work directory and a private, size-limited ``/tmp``; nothing else of the
  host: no home, no project, no database, no ``/etc/shadow``, no ``/sys``.
- **Limits** (``prlimit`` on the jailed tree): address space, CPU seconds, processes, file size, open files, no
  core dumps; and a wall clock after which the whole tree is killed. :meth:`JailLimits.clamped` applies the
  server-side maxima (``VERTICALS_JAIL_MAX_*``) a job cannot raise.

There is no fallback: when ``bwrap`` is missing or the jail does not verify, :class:`JailUnavailable` is raised
with what to do. :func:`verify` runs a probe inside a jail once per process and reports the layers it *observed*
(uid seen from outside, capabilities, seccomp mode, interfaces, read-only root ...), not the ones intended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Jail", "JailLimits", "JailResult", "JailUnavailable", "jail_uid", "verify"]

INSIDE_UID = 1000
INSTALL_HINT = ("install bubblewrap: `apt-get install bubblewrap` on Debian/Ubuntu (`make setup` does it), "
                "`dnf install bubblewrap` on Fedora")


class JailUnavailable(RuntimeError):
    """No jail can be built here; untrusted code is not run (never unconfined)."""


# The jail's settings and their defaults, for when this file runs without the verticals package (loaded by
# path under another interpreter: tests/jail_runner.py, the ordinary-user case). verticals.config.Settings
# declares the same fields and defaults (tests/test_settings.py checks that they agree).
STANDALONE_DEFAULTS: dict[str, int | float] = {
    "jail_uid": 65534, "jail_max_memory_mb": 4096, "jail_max_cpu_seconds": 300, "jail_max_wall_seconds": 600.0,
    "jail_max_processes": 256, "jail_max_file_size_mb": 256, "jail_max_open_files": 1024, "jail_max_tmp_mb": 1024}


def _setting(name: str) -> int | float:
    """A jail setting (``verticals.config.settings()``); a bad ``VERTICALS_*`` value makes the jail unavailable."""
    try:
        from verticals.config import SettingsError, settings
    except ImportError:  # standalone: the same variables, read here
        variable, default = f"VERTICALS_{name.upper()}", STANDALONE_DEFAULTS[name]
        raw = os.environ.get(variable, "").strip()
        try:
            value = type(default)(raw) if raw else default
        except ValueError:
            value = 0
        if value <= 0:
            raise JailUnavailable(f"{variable} must be a number > 0, got {raw!r}") from None
        return value
    try:
        return getattr(settings(), name)
    except SettingsError as error:
        raise JailUnavailable(str(error)) from None


def jail_uid() -> int:
    """The host uid a root caller's jail runs as (``VERTICALS_JAIL_UID``, default 65534: ``nobody``, always > 0)."""
    return int(_setting("jail_uid"))


@dataclass(frozen=True)
class JailLimits:
    """Resource limits of one jailed run. Callers may lower them; :meth:`clamped` caps them at the server maxima."""

    memory_mb: int = 2048  # address space of each process
    cpu_seconds: int = 60  # CPU time of each process
    wall_seconds: float = 90.0  # the whole run, then every process of the jail is killed
    processes: int = 64  # processes/threads of the jail uid
    file_size_mb: int = 64  # largest file a process may write
    open_files: int = 256
    tmp_mb: int = 256  # size of the private /tmp

    MAXIMA = {"memory_mb": "jail_max_memory_mb",  # limit -> its server maximum (Settings field, VERTICALS_JAIL_MAX_*)
              "cpu_seconds": "jail_max_cpu_seconds",
              "wall_seconds": "jail_max_wall_seconds",
              "processes": "jail_max_processes",
              "file_size_mb": "jail_max_file_size_mb",
              "open_files": "jail_max_open_files",
              "tmp_mb": "jail_max_tmp_mb"}

    def clamped(self) -> JailLimits:
        """These limits, each at most its server maximum (``VERTICALS_JAIL_MAX_*``) and at least 1."""
        values = {}
        for name, maximum in self.MAXIMA.items():
            value = getattr(self, name)
            values[name] = type(value)(max(1, min(value, _setting(maximum))))
        return dataclasses.replace(self, **values)


@dataclass
class JailResult:
    returncode: int
    stdout: bytes
    stderr: bytes
    killed: str | None  # "timeout", "cpu", "killed", "signal N" or None
    seconds: float
    layers: dict[str, object] = field(default_factory=dict)


# ---------------------------------------------------------------- seccomp


@functools.cache
def _seccomp_program() -> bytes:
    """The BPF program of the jail's seccomp filter (allow by default, deny the calls an escape needs)."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as error:  # OSError: libseccomp.so.2 missing
        raise JailUnavailable(f"the seccomp layer needs pyseccomp and libseccomp ({error}); "
                              "`pip install pyseccomp` and `apt-get install libseccomp2`") from error
    deny = seccomp.ERRNO(errno.EPERM)
    jail = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in ("mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
                 "fsmount", "fspick", "mount_setattr", "ptrace", "process_vm_readv", "process_vm_writev",
                 "keyctl", "add_key", "request_key", "bpf", "unshare", "setns", "perf_event_open", "userfaultfd",
                 "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
                 "swapon", "swapoff", "acct", "quotactl", "syslog", "open_by_handle_at", "name_to_handle_at",
                 "iopl", "ioperm", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
                 "lookup_dcookie", "personality", "vhangup", "pidfd_getfd"):
        with contextlib.suppress(RuntimeError, ValueError, OSError):  # a name this architecture lacks
            jail.add_rule(deny, name)
    # clone with any namespace flag (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME)
    for flag in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080):
        jail.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone
    jail.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for family in (socket.AF_PACKET, socket.AF_NETLINK):
        jail.add_rule(deny, "socket", seccomp.Arg(0, seccomp.EQ, family))
    jail.add_rule(deny, "socket", seccomp.Arg(1, seccomp.MASKED_EQ, 0xF, socket.SOCK_RAW))
    with tempfile.TemporaryFile() as handle:
        jail.export_bpf(handle)
        handle.seek(0)
        return handle.read()


def _seccomp_fd() -> int:
    """A fresh readable fd with the filter program (bwrap reads it to its end, so one fd per run)."""
    read, write = os.pipe()
    program = _seccomp_program()
    if len(program) > 60000:  # a pipe buffer holds 64 KiB; never block here
        os.close(read)
        os.close(write)
        raise JailUnavailable("the seccomp program is unexpectedly large")
    os.write(write, program)
    os.close(write)
    return read


# ---------------------------------------------------------------- command lines


@functools.cache
def _bwrap() -> tuple[str, frozenset[str]]:
    if not sys.platform.startswith("linux"):
        raise JailUnavailable("running untrusted code needs Linux (bubblewrap namespaces)")
    path = shutil.which("bwrap")
    if path is None:
        raise JailUnavailable(f"bubblewrap (bwrap) is not installed, so untrusted code cannot run: {INSTALL_HINT}")
    try:
        help_text = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise JailUnavailable(f"bwrap does not start ({error}): {INSTALL_HINT}") from error
    options = frozenset(word for word in help_text.split() if word.startswith("--"))
    return path, options


def _setpriv() -> str:
    path = shutil.which("setpriv")
    if path is None:
        raise JailUnavailable("setpriv (util-linux) is needed to drop root before the jail starts")
    return path


def _system_view() -> list[str]:
    """Read-only binds of the system: /usr and the merged-/usr links (or real dirs on older layouts)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
        args += ["--ro-bind-try", name, name]
    return args


def python_paths() -> list[Path]:
    """What an interpreter like this one needs to start: its prefixes (the venv and the base install)."""
    paths: list[Path] = []
    for raw in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        for path in (Path(raw), Path(raw).resolve()):
            if path not in paths:
                paths.append(path)
    return paths


def _dedupe(paths: Iterable[Path]) -> list[Path]:
    """Drop duplicates and paths inside another listed path (a nested bind would be redundant)."""
    unique = sorted({Path(os.path.abspath(p)) for p in paths}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(path == k or k in path.parents for k in kept):
            kept.append(path)
    return kept


FORBIDDEN_VIEWS = ("/", "/etc", "/root", "/home", "/proc", "/sys", "/dev", "/var", "/run", "/boot")


class Jail:
    """A jail around one writable directory. Each :meth:`run` starts a fresh jailed process tree.

    ``read_only``: host paths shown read-only at the same path (the interpreter prefixes are added for you when
    ``python=True``); ``files``: single host files shown read-only at a given path inside.
    """

    def __init__(self, writable: Path, read_only: Sequence[Path] = (), files: Mapping[str, Path] | None = None,
                 limits: JailLimits | None = None, python: bool = True):
        self.writable = Path(writable).resolve()
        self.limits = (limits or JailLimits()).clamped()
        paths = [Path(p) for p in read_only]
        if python:
            paths += python_paths()
        for path in paths:
            if str(Path(os.path.abspath(path))) in FORBIDDEN_VIEWS:
                raise JailUnavailable(f"refusing to show {path} inside the jail: it would expose the host")
        self.read_only = [p for p in _dedupe(paths) if p.exists() and p != self.writable]
        self.files = {str(k): Path(v) for k, v in (files or {}).items()}
        self.root_caller = os.geteuid() == 0

    # -- command line -------------------------------------------------------

    def _view(self) -> list[str]:
        """System view, private /tmp, traversable parent folders, then the read-only and writable binds."""
        args = _system_view()
        args += ["--perms", "1777", "--size", str(self.limits.tmp_mb * 2**20), "--tmpfs", "/tmp"]
        bound = [Path("/usr"), *self.read_only, self.writable]
        parents = {parent for path in [*self.read_only, self.writable, *map(Path, self.files)]
                   for parent in path.parents if parent != Path("/")}
        # folders bwrap creates for a bind would copy modes like /root's 0700: the jail uid must traverse them
        for parent in sorted(parents, key=lambda p: len(p.parts)):
            if not any(parent == b or b in parent.parents for b in bound):
                args += ["--perms", "0755", "--dir", str(parent)]
        for path in self.read_only:
            args += ["--ro-bind", str(path), str(path)]
        for inside, source in self.files.items():
            args += ["--ro-bind", str(source), inside]
        return args

    def _identity(self, options: frozenset[str]) -> list[str]:
        args = ["--unshare-user", "--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID)]
        if "--disable-userns" in options:
            args.append("--disable-userns")
        return args

    def _env(self, env: Mapping[str, str] | None) -> list[str]:
        values = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.writable), "TMPDIR": "/tmp",
                  "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        args = ["--clearenv"]
        for name, value in values.items():
            args += ["--setenv", name, value]
        return args

    def command(self, argv: Sequence[str], seccomp_fd: int, env: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> list[str]:
        """The full command line (bwrap, or bwrap -> setpriv -> bwrap for a root caller)."""
        bwrap, options = _bwrap()
        common = ["--die-with-parent", "--new-session", "--hostname", "jail", "--chdir", str(cwd or self.writable)]
        if not self.root_caller:
            return [bwrap, *self._identity(options), "--unshare-pid", "--unshare-net", "--unshare-ipc",
                    "--unshare-uts", "--unshare-cgroup-try", *common, *self._env(env), "--proc", "/proc",
                    "--dev", "/dev", *self._view(), "--bind", str(self.writable), str(self.writable),
                    "--remount-ro", "/", "--cap-drop", "ALL", "--seccomp", str(seccomp_fd), "--", *argv]
        uid = jail_uid()
        outer = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup",
                 "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--cap-add", "CAP_SETUID",
                 "--cap-add", "CAP_SETGID", "--proc", "/proc", "--dev", "/dev", *self._view(),
                 "--bind", str(self.writable), str(self.writable), "--"]
        drop = [_setpriv(), f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                "--no-new-privs", "--"]
        inner = [bwrap, *self._identity(options), "--unshare-ipc", "--unshare-uts", *common, *self._env(env),
                 "--ro-bind", "/", "/", "--dev-bind", "/dev/null", "/dev/null", "--bind", "/tmp", "/tmp",
                 "--bind", str(self.writable), str(self.writable), "--cap-drop", "ALL",
                 "--seccomp", str(seccomp_fd), "--", *argv]
        return outer + drop + inner

    def prepare_writable(self) -> None:
        """Hand the writable directory to the jail uid (a root caller's jail does not run as root)."""
        if not self.root_caller:
            return
        uid = jail_uid()
        for path in [self.writable, *self.writable.rglob("*")]:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(path, uid, uid)

    # -- running ------------------------------------------------------------

    def _preexec(self):
        limits = self.limits

        def apply() -> None:
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
            memory = limits.memory_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            size = limits.file_size_mb * 2**20
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))

        return apply

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None,
              stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen:
        """Start ``argv`` in the jail; the caller must wait for it and kill it (:func:`kill`) when done."""
        self.prepare_writable()
        seccomp_fd = _seccomp_fd()
        try:
            command = self.command(argv, seccomp_fd, env, cwd)
            return subprocess.Popen(command, cwd=self.writable, stdin=stdin, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, pass_fds=(seccomp_fd,), start_new_session=True,
                                    preexec_fn=self._preexec(), env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        finally:
            os.close(seccomp_fd)

    def run(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None,
            input: bytes | None = None) -> JailResult:
        """Run ``argv`` in the jail to its end or the wall clock; the layers verified for this machine come along."""
        layers = verify()
        started = time.perf_counter()
        process = self.start(argv, env, cwd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)
        killed = None
        try:
            stdout, stderr = process.communicate(input=input, timeout=self.limits.wall_seconds)
        except subprocess.TimeoutExpired:
            killed = "timeout"
            kill(process)
            stdout, stderr = process.communicate()
        finally:
            kill(process)
        code = process.returncode if process.returncode is not None else -1
        if killed is None:
            killed = _death(code)
        return JailResult(code, stdout or b"", stderr or b"", killed, time.perf_counter() - started, layers)


def _death(code: int) -> str | None:
    """How the jailed program ended, from bwrap's exit code (it reports a signalled child as 128+N)."""
    number = -code if code < 0 else code - 128 if code > 128 else 0
    if not number:
        return None
    names = {int(signal.SIGXCPU): "cpu", int(signal.SIGKILL): "killed", int(signal.SIGXFSZ): "file size"}
    return names.get(number, f"signal {number}")


def kill(process: subprocess.Popen) -> None:
    """Kill a jail: its outer bwrap (every jailed process dies with its pid namespace) and the process group."""
    for action in (lambda: os.killpg(process.pid, signal.SIGKILL), process.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            action()


# ---------------------------------------------------------------- verification

_PROBE = r"""
import ctypes, json, os, socket, sys
out = {}
sys.stdout.write("ready\n"); sys.stdout.flush()
checks = json.loads(sys.stdin.readline())
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
out["uid_inside"] = os.getuid()
out["capabilities"] = int(status["CapEff"].strip(), 16) | int(status["CapPrm"].strip(), 16)
out["no_new_privs"] = status.get("NoNewPrivs", "").strip() == "1"
out["seccomp_mode"] = int(status.get("Seccomp", "0").strip())
out["interfaces"] = sorted(line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:])
libc = ctypes.CDLL(None, use_errno=True)
out["unshare_user"] = libc.unshare(0x10000000) == 0
out["mount"] = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == 0
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
out["root_writable"] = writable("/usr/.jail-probe") or writable("/.jail-probe")
out["proc_sys_writable"] = writable("/proc/sys/kernel/core_pattern")
out["host_paths_visible"] = []
for path, allowed in checks:  # allowed: None = must not exist, else the only names the folder may hold
    if allowed is None and os.path.lexists(path):
        out["host_paths_visible"].append(path)
    elif allowed is not None and os.path.isdir(path):
        out["host_paths_visible"] += [os.path.join(path, n) for n in os.listdir(path) if n not in allowed]
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    out["packet_socket"] = True
except OSError:
    out["packet_socket"] = False
print(json.dumps(out))
"""

NAMESPACES = ("user", "pid", "net", "ipc", "uts", "cgroup", "mnt")


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, shallowest first (the last one is the deepest)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, level = [], [pid]
    while level:
        level = [child for parent in level for child in children.get(parent, [])]
        found += level
    return found


def _namespace(pid: int | None, name: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{name}") if pid else None
    except OSError:
        return None


def _host_uids(pids: Iterable[int]) -> dict[int, list[int]]:
    uids = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("Uid:"):
                        uids[pid] = [int(v) for v in line.split()[1:]]
        except OSError:
            continue
    return uids


def _hidden_checks(jail: Jail) -> list[tuple[str, list[str] | None]]:
    """Host paths the probe must not see; a folder above a bind may exist but hold only the way to it."""
    bound = [*jail.read_only, jail.writable]
    checks: list[tuple[str, list[str] | None]] = [
        (p, None) for p in ("/etc/shadow", "/etc/passwd", "/sys", "/var", "/home", "/srv", "/mnt", "/opt")]
    for folder in {Path.home(), Path.cwd(), Path(tempfile.gettempdir())}:
        if any(folder == b or b in folder.parents for b in bound):
            continue  # the caller asked to show it
        below = sorted({b.relative_to(folder).parts[0] for b in bound if folder in b.parents})
        checks.append((str(folder), below if below else None))
    return checks


_verify_lock = threading.Lock()


@functools.cache
def _verified(root_caller: bool, uid: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="vjail-probe-") as folder:
        os.chmod(folder, 0o700)
        work = Path(folder) / "work"
        work.mkdir()
        jail = Jail(work, limits=JailLimits(wall_seconds=60))
        process = jail.start([sys.executable, "-I", "-c", _PROBE], stdin=subprocess.PIPE)
        try:
            ready = process.stdout.readline() if process.stdout else b""
            if ready.strip() != b"ready":
                _, stderr = process.communicate(timeout=30)
                raise JailUnavailable("the jail does not start here: "
                                      + (stderr or b"").decode("utf-8", "replace").strip()[-600:])
            pids = _descendants(process.pid)
            payload = pids[-1] if pids else None  # the deepest process: the probe itself
            host_uids = _host_uids([payload] if payload else [])
            namespaces = {name: _namespace(payload, name) != _namespace(os.getpid(), name) for name in NAMESPACES}
            request = json.dumps(_hidden_checks(jail)) + "\n"
            stdout, stderr = process.communicate(input=request.encode(), timeout=30)
        finally:
            kill(process)
        try:
            seen = json.loads(stdout.decode().strip().splitlines()[-1])
        except (IndexError, ValueError) as error:
            raise JailUnavailable("the jail probe failed: " + stderr.decode("utf-8", "replace")[-600:]) from error
    payload_uids = host_uids.get(payload, []) if payload else []
    layers: dict[str, object] = {
        "bubblewrap": True,
        "host_uid": payload_uids[0] if payload_uids else None,
        "unprivileged_user": bool(payload_uids) and all(u != 0 for u in payload_uids) and seen["uid_inside"] != 0,
        **{f"{name}_namespace": unshared for name, unshared in namespaces.items()},
        "no_capabilities": seen["capabilities"] == 0,
        "no_new_privs": seen["no_new_privs"],
        "seccomp": seen["seccomp_mode"] == 2 and not seen["mount"] and not seen["packet_socket"],
        "user_namespaces_blocked": not seen["unshare_user"],
        "network_isolated": seen["interfaces"] in ([], ["lo"]),
        "read_only_root": not seen["root_writable"] and not seen["proc_sys_writable"],
        "host_hidden": not seen["host_paths_visible"],
        "rlimits": True,
        "wall_timeout": True,
    }
    failed = [name for name, ok in layers.items() if ok is False]
    if failed:
        raise JailUnavailable(f"the jail did not verify on this machine (failed: {', '.join(failed)}); "
                              f"observed {json.dumps(seen)}. Untrusted code is not run.")
    return layers


def verify() -> dict[str, object]:
    """Probe a jail once per process; return the layers observed, or raise :class:`JailUnavailable`."""
    with _verify_lock:
        return dict(_verified(os.geteuid() == 0, jail_uid() if os.geteuid() == 0 else os.geteuid()))
