"""Run untrusted code in a jail built on bubblewrap (``bwrap``): the one way verticals runs code it did not write.

What a jailed process gets (docs/security.md, "The code jail", says what each layer stops and what it does not):

- **Namespaces**, all unshared: user, pid, network (only a loopback of its own), ipc, uts, cgroup, mount.
- **An unprivileged identity**: uid/gid 1000 inside, mapped to an unprivileged id outside: the caller's own
  uid when the caller is not root; ``VERTICALS_JAIL_UID`` (default 65534, ``nobody``) when it is. A root caller
  cannot hand its uid to the jail: it builds the mounts in a privileged outer bwrap, drops to the jail uid with
  ``setpriv --no-new-privs`` and starts the real jail (an unprivileged inner bwrap) from there.
- **No capabilities**, ``no_new_privs``, ``--new-session`` (no terminal injection), ``--die-with-parent``,
  further user namespaces disabled (``--disable-userns``).
- **A seccomp allow-list** (libseccomp through ``pyseccomp``): only the system calls listed in
  :data:`ALLOWED_SYSCALLS` run, anything else answers ENOSYS (a call added to the kernel tomorrow is refused
  too); sockets only of family ``AF_UNIX``; no io_uring, no namespace flags on ``clone``, no ``clone3``.
- **A minimal read-only view**: ``/usr`` (and the ``/bin``, ``/lib*`` links), the interpreter's prefixes, the
  paths the caller lists; a writable work directory and a private, size-limited ``/tmp``; nothing else of the
  host: no home, no project, no database, no ``/etc/shadow``, no ``/sys``.
- **Limits per run** (:class:`RunCgroup`): a cgroup made for the run holds the whole jailed tree, with its
  memory (``memory_mb``), its number of tasks (``processes``) and its share of the CPUs (``cpus``, where the
  cpu controller is there) capped; an out-of-memory kill in it ends the run. Where no cgroup can be made (an
  ordinary user without a delegated cgroup) the run goes on with the per-process limits only, and says so
  (``layers["run_cgroup"]``, one warning per process).
- **Limits per process** (``prlimit`` on the jailed tree): address space, CPU seconds, processes of the jail
  uid, file size, open files, no core dumps; a wall clock and an optional ``cancelled`` callable after which
  the whole tree is killed.
- **Bounded outputs**: stdout and stderr are streamed, each kept to ``output_mb`` (head and tail; the rest is
  dropped and counted in :class:`JailResult`); files a jailed run wrote are read only through
  :func:`read_output` (no symlink, regular files only, never blocks, a size cap and a deadline). The host holds
  at most about ``2 x output_mb`` plus what the caller reads with :func:`read_output` per run.
- **Private work folders** (:func:`private_dir`): 0700 under the temp dir, named after their owning process,
  removed by their owner and, if it was killed first, by the next process that makes one (:func:`sweep_stale`).

There is no unconfined fallback: when ``bwrap`` is missing or the jail does not verify, :class:`JailUnavailable`
is raised with what to do. :func:`verify` runs a probe inside a jail once per process and reports the layers
it *observed* (uid seen from outside, capabilities, seccomp mode and refused calls, interfaces, read-only
root ...), not the ones intended.

This module runs on its own too (loaded by path, standard library plus ``pyseccomp``): tests/jail_runner.py.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import errno
import fcntl
import functools
import json
import logging
import os
import resource
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ALLOWED_SYSCALLS", "Jail", "JailLimits", "JailOutputRefused", "JailResult", "JailUnavailable",
           "OutputFile", "RunCgroup", "jail_uid", "private_dir", "read_output", "remove_private_dir",
           "sweep_stale", "verify"]

log = logging.getLogger("verticals.jail")

INSIDE_UID = 1000
INSTALL_HINT = ("install bubblewrap: `apt-get install bubblewrap` on Debian/Ubuntu (`make setup` does it), "
                "`dnf install bubblewrap` on Fedora")


class JailUnavailable(RuntimeError):
    """No jail can be built here; untrusted code is not run (never unconfined)."""


class JailOutputRefused(OSError):
    """A file a jailed run left is not a plain regular file (a symlink, a FIFO, a device, a folder ...)."""


# The jail's settings and their defaults, for when this file runs without the verticals package (loaded by
# path under another interpreter: tests/jail_runner.py, the ordinary-user case). verticals.config.Settings
# declares the same fields and defaults (tests/test_settings.py checks that they agree).
STANDALONE_DEFAULTS: dict[str, int | float | str | None] = {
    "jail_uid": 65534, "jail_max_memory_mb": 4096, "jail_max_cpu_seconds": 300, "jail_max_wall_seconds": 600.0,
    "jail_max_processes": 256, "jail_max_file_size_mb": 256, "jail_max_open_files": 1024, "jail_max_tmp_mb": 1024,
    "jail_max_output_mb": 64, "jail_max_disk_mb": 4096, "jail_max_cpus": 2.0, "jail_cgroup": None}


def _setting(name: str) -> int | float | str | None:
    """A jail setting (``verticals.config.settings()``); a bad ``VERTICALS_*`` value makes the jail unavailable."""
    try:
        from verticals.config import SettingsError, settings
    except ImportError:  # standalone: the same variables, read here
        variable, default = f"VERTICALS_{name.upper()}", STANDALONE_DEFAULTS[name]
        raw = os.environ.get(variable, "").strip()
        if default is None or isinstance(default, str):  # a text setting
            return raw or default
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
    return int(_setting("jail_uid") or 0)


@dataclass(frozen=True)
class JailLimits:
    """Resource limits of one jailed run. Callers may lower them; :meth:`clamped` caps them at the server maxima."""

    memory_mb: int = 2048  # memory of the whole run (its cgroup) and address space of each of its processes
    cpu_seconds: int = 60  # CPU time of each process
    wall_seconds: float = 90.0  # the whole run, then every process of the jail is killed
    processes: int = 64  # processes/threads of the run (its cgroup) and of the jail uid (RLIMIT_NPROC)
    file_size_mb: int = 64  # largest file a process may write
    open_files: int = 256
    tmp_mb: int = 256  # size of the private /tmp
    output_mb: int = 8  # stdout and stderr each: at most this much is kept (head and tail), the rest dropped
    disk_mb: int = 512  # the run's writable folder on the host: bytes allocated in it (and DISK_ENTRIES entries)
    cpus: float = 1.0  # CPU time of the whole run per second of wall time, all its processes together (its cgroup)

    MAXIMA = {"memory_mb": "jail_max_memory_mb",  # limit -> its server maximum (Settings field, VERTICALS_JAIL_MAX_*)
              "cpu_seconds": "jail_max_cpu_seconds",
              "wall_seconds": "jail_max_wall_seconds",
              "processes": "jail_max_processes",
              "file_size_mb": "jail_max_file_size_mb",
              "open_files": "jail_max_open_files",
              "tmp_mb": "jail_max_tmp_mb",
              "output_mb": "jail_max_output_mb",
              "disk_mb": "jail_max_disk_mb",
              "cpus": "jail_max_cpus"}

    def clamped(self) -> JailLimits:
        """These limits, each at most its server maximum (``VERTICALS_JAIL_MAX_*``) and at least 1 (``cpus``: at
        least a tenth of a CPU)."""
        values = {}
        for name, maximum in self.MAXIMA.items():
            value = getattr(self, name)
            floor = 0.1 if name == "cpus" else 1
            values[name] = type(value)(max(floor, min(value, _setting(maximum))))  # type: ignore[operator]
        return dataclasses.replace(self, **values)


@dataclass
class JailResult:
    returncode: int
    stdout: bytes  # at most output_mb (head and tail, a marker line where bytes were dropped)
    stderr: bytes
    killed: str | None  # "timeout", "cancelled", "memory", "disk", "cpu", "killed", "file size", "signal N" or None
    seconds: float
    layers: dict[str, object] = field(default_factory=dict)
    stdout_dropped: int = 0  # bytes the run wrote to stdout beyond the cap (not kept)
    stderr_dropped: int = 0
    peak_memory: int | None = None  # bytes, the run's cgroup's high-water mark (None without a cgroup)
    cpu_throttled: float | None = None  # seconds the run's processes waited at its CPU share (None: no cpu cgroup)


# ---------------------------------------------------------------- seccomp

# The system calls a jailed process may make (names libseccomp does not know on this architecture are
# skipped). Anything else answers ENOSYS. Close to the allow-list container runtimes use for unprivileged
# containers, without what needs privileges or crosses the walls: no mount family, no ptrace or
# process_vm_*, no keyrings, bpf, perf events, userfaultfd, io_uring, kcmp, fanotify, handle-based opens,
# NUMA placement, module/kexec/reboot/swap/clock/quota calls. socket, socketpair and clone are allowed with
# conditions (below), clone3 answers ENOSYS (glibc then uses clone).
ALLOWED_SYSCALLS = tuple("""
accept accept4 access alarm arch_prctl bind brk cachestat capget capset chdir chmod chown clock_getres
clock_gettime clock_nanosleep close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_pwait epoll_pwait2 epoll_wait eventfd eventfd2 execve execveat exit exit_group
faccessat faccessat2 fadvise64 fallocate fchdir fchmod fchmodat fchmodat2 fchown fchownat fcntl fdatasync
fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstatfs fsync ftruncate futex futex_requeue
futex_wait futex_waitv futex_wake futimesat get_mempolicy get_robust_list get_thread_area getcpu getcwd getdents
getdents64 getegid geteuid getgid getgroups getitimer getpeername getpgid getpgrp getpid getppid getpriority
getrandom getresgid getresuid getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday getuid
getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents
io_pgetevents io_setup io_submit ioctl ioprio_get ioprio_set kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek lsetxattr
lstat madvise map_shadow_stack membarrier memfd_create mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall
mmap mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap mseal msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap nanosleep newfstatat open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll prctl pread64 preadv preadv2
prlimit64 pselect6 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recvfrom recvmmsg recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo
sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr sched_getparam sched_getscheduler
sched_rr_get_interval sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp
select semctl semget semop semtimedop sendfile sendmmsg sendmsg sendto set_robust_list set_thread_area
set_tid_address setfsgid setfsuid setgid setgroups setitimer setpgid setpriority setregid setresgid setresuid
setreuid setrlimit setsid setsockopt setuid setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
signalfd4 splice stat statfs statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
timer_create timer_delete timer_getoverrun timer_gettime timer_settime timerfd_create timerfd_gettime
timerfd_settime times tkill truncate umask uname unlink unlinkat utime utimensat utimes vfork vmsplice wait4
waitid write writev
""".split())  # noqa: SIM905 - a block of names reads better than 300 quoted strings

# Newer than some libseccomp releases know by name; since Linux 5.1 a new call has one number on every
# architecture, so these are added by number when the name is unknown.
UNIFORM_NUMBERS = {"cachestat": 451, "fchmodat2": 452, "map_shadow_stack": 453, "futex_wake": 454,
                   "futex_wait": 455, "futex_requeue": 456, "mseal": 462}

# Refused with EPERM rather than ENOSYS (a clear "not allowed" for the calls an escape reaches for first).
DENIED_SYSCALLS = ("mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
                   "fsmount", "fspick", "mount_setattr", "ptrace", "process_vm_readv", "process_vm_writev",
                   "keyctl", "add_key", "request_key", "bpf", "unshare", "setns", "perf_event_open",
                   "userfaultfd", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
                   "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "open_by_handle_at",
                   "name_to_handle_at", "iopl", "ioperm", "settimeofday", "clock_settime", "adjtimex",
                   "clock_adjtime", "lookup_dcookie", "personality", "vhangup", "pidfd_getfd", "kcmp",
                   "io_uring_setup", "io_uring_enter", "io_uring_register")

NAMESPACE_FLAGS = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
                   "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
                   "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x00000080}


@functools.cache
def _seccomp_program() -> bytes:
    """The BPF program of the jail's seccomp filter: an allow-list (see :data:`ALLOWED_SYSCALLS`)."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as error:  # OSError: libseccomp.so.2 missing
        raise JailUnavailable(f"the seccomp layer needs pyseccomp and libseccomp ({error}); "
                              "`pip install pyseccomp` and `apt-get install libseccomp2`") from error
    unknown = (RuntimeError, ValueError, OSError)  # a name this architecture (or this libseccomp) lacks
    jail = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.ENOSYS))
    # another architecture's calls from this process (int 0x80 on x86-64, x32 numbers) kill it
    jail.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    for name in ALLOWED_SYSCALLS:
        try:
            jail.add_rule(seccomp.ALLOW, name)
        except unknown:
            if name in UNIFORM_NUMBERS:
                with contextlib.suppress(*unknown):
                    jail.add_rule(seccomp.ALLOW, UNIFORM_NUMBERS[name])
    deny = seccomp.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        with contextlib.suppress(*unknown):
            jail.add_rule(deny, name)
    # sockets: AF_UNIX only (the network namespace has no route out, but AF_NETLINK, AF_VSOCK, AF_ALG, AF_INET
    # ... are kernel code a jail need not reach)
    for name in ("socket", "socketpair"):
        jail.add_rule(seccomp.ALLOW, name, seccomp.Arg(0, seccomp.EQ, socket.AF_UNIX))
        jail.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), name, seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
    # clone without any namespace flag; clone3 passes its flags in memory a filter cannot read: it is not
    # listed, so it answers ENOSYS, and libc falls back to clone
    every_namespace = functools.reduce(lambda a, b: a | b, NAMESPACE_FLAGS.values())
    jail.add_rule(seccomp.ALLOW, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, every_namespace, 0))
    for flag in NAMESPACE_FLAGS.values():
        jail.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
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


# ---------------------------------------------------------------- bounded outputs


class _Capture:
    """One output stream of a run, kept to ``cap`` bytes: its first half and its last half; the rest is counted."""

    def __init__(self, cap: int):
        self.head_cap = cap // 2
        self.tail_cap = cap - self.head_cap
        self.head = bytearray()
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_size = 0
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        if len(self.head) < self.head_cap:
            taken = data[: self.head_cap - len(self.head)]
            self.head += taken
            data = data[len(taken):]
        if data:
            self.tail.append(data)
            self.tail_size += len(data)
            while self.tail and self.tail_size - len(self.tail[0]) >= self.tail_cap:
                self.tail_size -= len(self.tail.popleft())  # whole chunks: O(1) per read

    def value(self) -> tuple[bytes, int]:
        """The bytes kept (a marker line where bytes were dropped) and how many were dropped."""
        tail = b"".join(self.tail)[-self.tail_cap:] if self.tail else b""
        dropped = self.total - len(self.head) - len(tail)
        if not dropped:
            return bytes(self.head) + tail, 0
        return bytes(self.head) + f"\n[verticals.jail: {dropped} bytes dropped]\n".encode() + tail, dropped


@dataclass
class OutputFile:
    data: bytes
    size: int  # the file's size when it was opened
    truncated: bool  # larger than max_bytes: only the first max_bytes are in data


def read_output(path: Path | str, *, max_bytes: int, within: Path | str | None = None,
                timeout: float = 10.0) -> OutputFile:
    """Read a file a jailed run wrote, as the host safely can: the one way the host reads such a file.

    Every component below ``within`` (default: the file's folder) is opened with ``O_NOFOLLOW``, so a symlink
    (to ``/dev/zero``, to a host secret) is refused; the file is opened ``O_NONBLOCK`` and must be a regular
    file (``fstat``), so a FIFO, a socket, a device or a folder is refused without blocking; at most
    ``max_bytes`` are read, and reading stops at ``timeout`` seconds. Raises :class:`JailOutputRefused` (an
    ``OSError``) for anything but a regular file, ``FileNotFoundError`` when it does not exist, ``TimeoutError``
    past the deadline.
    """
    path = Path(path)
    base = Path(within) if within is not None else path.parent
    try:
        parts = path.relative_to(base).parts
    except ValueError:
        raise JailOutputRefused(errno.EINVAL, "not inside the folder it was asked for", str(path)) from None
    if not parts or any(part in ("", ".", "..") for part in parts):
        raise JailOutputRefused(errno.EINVAL, "not a file name", str(path))
    deadline = time.monotonic() + timeout
    folder = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                below = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise JailOutputRefused(error.errno, "a folder on the way is a symlink or not a folder",
                                            str(path)) from None
                raise
            os.close(folder)
            folder = below
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                         dir_fd=folder)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EACCES):
                raise JailOutputRefused(error.errno, "not a regular file the host may read", str(path)) from None
            raise
    finally:
        os.close(folder)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise JailOutputRefused(errno.EINVAL, "not a regular file", str(path))
        chunks: list[bytes] = []
        got = 0
        while got < max_bytes:
            if time.monotonic() > deadline:
                raise TimeoutError(errno.ETIMEDOUT, "reading a jail's output took too long", str(path))
            chunk = os.read(fd, min(1 << 20, max_bytes - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        data = b"".join(chunks)
        truncated = len(data) >= max_bytes and (info.st_size > max_bytes or bool(os.read(fd, 1)))
        return OutputFile(data, info.st_size, truncated)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- private work folders

_STALE_PREFIX = "vjail-"
_owned: set[str] = set()
_owned_lock = threading.Lock()


def _start_time(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot): a pid and its start time name one process, ever."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_tag() -> str:
    return f"{os.getpid()}.{_start_time(os.getpid()) or 0}"


def _owner_alive(name: str) -> bool:
    """Whether the process named in ``vjail-<pid>.<start>-...`` still runs (unparsable names count as alive)."""
    try:
        tag = name[len(_STALE_PREFIX):].split("-", 1)[0]
        pid, started = tag.split(".", 1)
        return _start_time(int(pid)) == started
    except ValueError:
        return True


@functools.cache
def sweep_stale() -> int:
    """Remove the private folders of processes that died without removing them (SIGKILL, power loss): once per
    process, before its first :func:`private_dir`. Only folders of this uid; returns how many were removed."""
    removed = 0
    with contextlib.suppress(OSError), os.scandir(tempfile.gettempdir()) as entries:
        for entry in entries:
            try:
                if (not entry.name.startswith(_STALE_PREFIX) or not entry.is_dir(follow_symlinks=False)
                        or entry.stat(follow_symlinks=False).st_uid != os.geteuid() or _owner_alive(entry.name)):
                    continue
            except OSError:
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d work folder(s) left by killed processes", removed)
    return removed


def private_dir(kind: str) -> Path:
    """A new private folder (mode 0700, this uid's) under the temp dir for one job's files.

    Remove it with :func:`remove_private_dir`; this process removes what is left at exit, and if it is killed
    (SIGKILL) the next process that calls this removes it (:func:`sweep_stale`): a folder's name holds the pid
    and start time of its owner.
    """
    sweep_stale()
    safe = "".join(c for c in kind if c.isalnum())[:20] or "work"
    path = Path(tempfile.mkdtemp(prefix=f"{_STALE_PREFIX}{_owner_tag()}-{safe}-"))
    os.chmod(path, 0o700)
    with _owned_lock:
        _owned.add(str(path))
    return path


def remove_private_dir(path: Path | str) -> None:
    """Remove a folder made by :func:`private_dir` (everything in it, symlinks not followed)."""
    shutil.rmtree(path, ignore_errors=True)
    with _owned_lock:
        _owned.discard(str(path))


@atexit.register
def _remove_owned() -> None:
    with _owned_lock:
        left = list(_owned)
    for path in left:
        remove_private_dir(path)


# ---------------------------------------------------------------- per-run cgroups

CGROUP_FS = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000  # the CFS bandwidth period of a run's cpu cgroup (its quota is cpus x this)


def _mounts() -> tuple[Path | None, dict[str, Path]]:
    """The cgroup v2 mount point (or None) and the v1 mount point of each v1 controller."""
    unified: Path | None = None
    v1: dict[str, Path] = {}
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if " - " not in line:
                continue
            after = line.split(" - ", 1)[1].split()
            if len(after) < 3:
                continue
            kind, options = after[0], after[2].split(",")
            if kind == "cgroup2" and unified is None:
                unified = Path(fields[4])
            elif kind == "cgroup":
                for option in options:
                    if option in ("memory", "pids", "cpu"):
                        v1.setdefault(option, Path(fields[4]))
    return unified, v1


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under "" its v2 path."""
    own: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/cgroup", encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) == 3:
                for controller in parts[1].split(",") if parts[1] else [""]:
                    own[controller] = parts[2]
    return own


def _read(path: Path) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _v2_ready(parent: Path) -> bool:
    """Whether children of the v2 cgroup ``parent`` get memory and pids (enabling them if this uid may)."""
    wanted = {"memory", "pids"}
    try:
        if wanted <= set(_read(parent / "cgroup.subtree_control").split()):
            return True
        _write(parent / "cgroup.subtree_control", "+memory +pids")
        return wanted <= set(_read(parent / "cgroup.subtree_control").split())
    except OSError:
        return False


def _v2_parents(parent: Path) -> dict[str, Path]:
    """The controllers a run gets under the ready v2 cgroup ``parent``: memory and pids, and cpu where its
    children get it (enabled if this uid may; without it the run's CPU is capped per process only)."""
    parents = {"memory": parent, "pids": parent}
    with contextlib.suppress(OSError):
        if "cpu" not in _read(parent / "cgroup.subtree_control").split() and \
                "cpu" in _read(parent / "cgroup.controllers").split():
            _write(parent / "cgroup.subtree_control", "+cpu")
        if "cpu" in _read(parent / "cgroup.subtree_control").split():
            parents["cpu"] = parent
    return parents


def _cgroup_parents(configured: str) -> tuple[dict[str, Path], str]:
    """Where this process's runs get their cgroups: controller -> parent folder, and a description; ({},
    reason) when nowhere.

    ``configured`` (``VERTICALS_JAIL_CGROUP``): parent folders, ``:``-separated (one cgroup v2 folder, or one
    folder per v1 controller: ``/sys/fs/cgroup/memory/X:/sys/fs/cgroup/pids/X``), ``off`` for none; empty: this
    process's own cgroups (v2: its own if it may enable controllers there, else ``verticals-jail`` at the top
    when root).
    """
    if configured.strip().lower() == "off":
        return {}, "VERTICALS_JAIL_CGROUP=off"
    unified, v1 = _mounts()
    if configured.strip():
        parents: dict[str, Path] = {}
        for raw in configured.split(":"):
            folder = Path(raw.strip())
            if not raw.strip():
                continue
            if not folder.is_dir():
                return {}, f"VERTICALS_JAIL_CGROUP names {folder}, which is not a cgroup folder"
            if (folder / "cgroup.controllers").exists():
                if not _v2_ready(folder):
                    return {}, (f"{folder} does not give memory and pids to its children "
                                "(cgroup.subtree_control); enable them there or delegate another folder")
                parents.update(_v2_parents(folder))
                continue
            for controller, mount in v1.items():
                if folder == mount or mount in folder.parents:
                    parents[controller] = folder
        if "memory" not in parents:
            return {}, f"VERTICALS_JAIL_CGROUP={configured} has no folder with the memory controller"
        return parents, "cgroup " + ("v2" if (parents["memory"] / "cgroup.controllers").exists() else "v1")
    own = _own_cgroups()
    controllers = set(_read(unified / "cgroup.controllers").split()) if unified and (
        unified / "cgroup.controllers").exists() else set()
    if unified is not None and {"memory", "pids"} <= controllers and "" in own:
        candidates = [unified / own[""].lstrip("/")]
        if os.geteuid() == 0:
            top = unified / "verticals-jail"
            with contextlib.suppress(OSError):
                if _v2_ready(unified):
                    top.mkdir(mode=0o755, exist_ok=True)
            candidates.append(top)
        for parent in candidates:
            if parent.is_dir() and os.access(parent, os.W_OK) and _v2_ready(parent):
                return _v2_parents(parent), "cgroup v2"
        return {}, ("no writable cgroup v2 folder gives memory and pids to its children (set "
                    "VERTICALS_JAIL_CGROUP to a delegated one)")
    parents = {}
    for controller in ("memory", "pids", "cpu"):
        if controller in v1 and controller in own:
            folder = v1[controller] / own[controller].lstrip("/")
            if folder.is_dir() and os.access(folder, os.W_OK):
                parents[controller] = folder
    if "memory" not in parents:
        why = "no memory controller is mounted" if "memory" not in v1 and not unified else \
            "this uid may not create cgroups below its own"
        return {}, f"{why} (set VERTICALS_JAIL_CGROUP to a delegated cgroup)"
    return parents, "cgroup v1"


_cgroup_lock = threading.Lock()
_cgroup_warned: set[str] = set()
_cgroup_joinable: dict[str, str | None] = {}  # configured value -> None, or why a process cannot join its cgroups


class RunCgroup:
    """The cgroup of one run (one folder per hierarchy): memory and tasks capped, every process in it killed and
    the folders removed when the run ends. Made and removed by the host side; the jail never sees cgroupfs."""

    def __init__(self, folders: dict[str, Path], version: int):
        self.folders = folders  # controller -> this run's folder
        self.version = version
        self.unique = list(dict.fromkeys(folders.values()))
        self.procs_files = [str(folder / "cgroup.procs") for folder in self.unique]

    @classmethod
    def create(cls, limits: JailLimits) -> tuple[RunCgroup | None, str]:
        """A cgroup for one run with ``limits``; (None, why) where none can be made."""
        configured = str(_setting("jail_cgroup") or "")
        with _cgroup_lock:
            broken = _cgroup_joinable.get(configured)
        if broken:
            return None, broken
        parents, description = _cgroup_parents(configured)
        if not parents:
            return None, description
        for parent in set(parents.values()):
            _sweep_cgroups(parent)
        name = f"{_STALE_PREFIX}{_owner_tag()}-{uuid.uuid4().hex[:12]}"
        folders: dict[str, Path] = {}
        made: list[Path] = []
        version = 2 if description == "cgroup v2" else 1
        try:
            for controller, parent in parents.items():
                folder = parent / name
                if folder not in made:
                    folder.mkdir(mode=0o755)
                    made.append(folder)
                folders[controller] = folder
            memory = limits.memory_mb * 2**20
            if version == 2:
                _write(folders["memory"] / "memory.max", str(memory))
                for setting, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                    with contextlib.suppress(OSError):
                        _write(folders["memory"] / setting, value)
            else:
                _write(folders["memory"] / "memory.limit_in_bytes", str(memory))
                try:
                    _write(folders["memory"] / "memory.memsw.limit_in_bytes", str(memory))
                except OSError:  # no swap accounting on this kernel: keep the run's pages out of swap instead
                    with contextlib.suppress(OSError):
                        _write(folders["memory"] / "memory.swappiness", "0")
                # v1 has no memory.oom.group: its OOM killer takes one victim and the rest of the run goes on
                # (another child then gets the freed memory). With the killer off, a process that reaches the
                # limit sleeps instead (under_oom 1) and the host ends the whole run, as oom.group does on v2.
                with contextlib.suppress(OSError):
                    _write(folders["memory"] / "memory.oom_control", "1")
            if "pids" in folders:
                _write(folders["pids"] / "pids.max", str(limits.processes))
            if "cpu" in folders:  # CFS bandwidth: the whole run gets `cpus` CPU-seconds per second of wall time
                quota = max(1000, round(limits.cpus * CPU_PERIOD_US))
                if version == 2:
                    _write(folders["cpu"] / "cpu.max", f"{quota} {CPU_PERIOD_US}")
                else:
                    _write(folders["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                    _write(folders["cpu"] / "cpu.cfs_quota_us", str(quota))
        except OSError as error:
            for folder in made:
                with contextlib.suppress(OSError):
                    folder.rmdir()
            return None, f"cannot make a cgroup in {parents['memory']} ({error.strerror or error})"
        cgroup = cls(folders, version)
        with _cgroup_lock:
            tried = configured in _cgroup_joinable
        if not tried:  # once per process: may a process of ours join? (cgroup v2 allows it only within a
            why = cgroup._try_join()  # subtree this uid owns, which creating a folder does not show)
            with _cgroup_lock:
                _cgroup_joinable[configured] = why
            if why:
                cgroup.remove()
                return None, why
        return cgroup, f"{description} ({', '.join(sorted(folders))})"

    def _try_join(self) -> str | None:
        """None if a short-lived child can join this cgroup, else why not."""
        try:
            subprocess.run([sys.executable, "-I", "-S", "-c", ""], preexec_fn=self.join, check=True, timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as error:
            return f"a process cannot be moved into {self.unique[0].parent} ({type(error).__name__})"
        return None

    def join(self) -> None:
        """Move the calling process into this cgroup (in the child, before exec: its whole tree follows)."""
        pid = str(os.getpid()).encode()
        for procs in self.procs_files:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def out_of_memory(self) -> bool:
        """Whether the run reached its memory limit: the kernel killed a process of it for memory, or (cgroup v1,
        killer off, see :meth:`create`) a process of it sleeps at the limit."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in _read(self.folders["memory"] / name).splitlines():
                key, _, value = line.partition(" ")
                if key in ("oom_kill", "under_oom") and int(value):
                    return True
        except (OSError, ValueError):
            pass
        return False

    def peak(self) -> int | None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int(_read(self.folders["memory"] / name).strip())
        except (OSError, ValueError):
            return None

    def cpu_throttled(self) -> float | None:
        """Seconds the run's processes were held back at its CPU share (``cpu.stat``), None without a cpu cgroup."""
        if "cpu" not in self.folders:
            return None
        try:
            stat = dict(line.split() for line in _read(self.folders["cpu"] / "cpu.stat").splitlines() if line)
            if "throttled_usec" in stat:  # v2
                return int(stat["throttled_usec"]) / 1e6
            return int(stat["throttled_time"]) / 1e9  # v1: nanoseconds
        except (OSError, ValueError, KeyError):
            return None

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError, ValueError):
                found |= {int(line) for line in _read(Path(procs)).split()}
        return found

    def kill_all(self, timeout: float = 5.0) -> bool:
        """SIGKILL every process of the run until none is left; whether none is."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(OSError):
            if self.version == 2:
                _write(self.folders["memory"] / "cgroup.kill", "1")
        while True:
            pids = self.pids()
            if not pids:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in pids:
                _kill_member(pid, self.unique[0].name)
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left and remove the folders (retried briefly: the kernel frees a dying task late)."""
        self.kill_all()
        for folder in self.unique:
            for _ in range(100):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            else:
                log.warning("could not remove the run cgroup %s (removed later by the next process)", folder)


def _kill_member(pid: int, name: str) -> None:
    """SIGKILL ``pid`` only if it is still the process in cgroup ``name`` (a pidfd pins it: no pid reuse race)."""
    try:
        handle = os.pidfd_open(pid)
    except OSError:
        return
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as file:
            if f"/{name}" not in file.read():
                return
        signal.pidfd_send_signal(handle, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(handle)


_swept: set[Path] = set()


def _sweep_cgroups(parent: Path) -> None:
    """Remove run cgroups in ``parent`` left by killed processes (once per parent and process)."""
    with _cgroup_lock:
        if parent in _swept:
            return
        _swept.add(parent)
    with contextlib.suppress(OSError), os.scandir(parent) as entries:
        for entry in entries:
            if entry.name.startswith(_STALE_PREFIX) and entry.is_dir() and not _owner_alive(entry.name):
                left = RunCgroup({"memory": Path(entry.path)}, 2 if (parent / "cgroup.controllers").exists() else 1)
                with contextlib.suppress(OSError):
                    left.remove()


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

    def _preexec(self, cgroup: RunCgroup | None):
        limits = self.limits

        def apply() -> None:
            if cgroup is not None:
                cgroup.join()  # before anything else: every process of the tree starts inside
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
              stdin: int | None = subprocess.DEVNULL, cgroup: RunCgroup | None = None) -> subprocess.Popen:
        """Start ``argv`` in the jail (inside ``cgroup`` if given); the caller must wait for it and kill it
        (:func:`kill`) when done. :meth:`run` does all of that with bounded outputs."""
        self.prepare_writable()
        seccomp_fd = _seccomp_fd()
        try:
            command = self.command(argv, seccomp_fd, env, cwd)
            return subprocess.Popen(command, cwd=self.writable, stdin=stdin, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, pass_fds=(seccomp_fd,), start_new_session=True,
                                    preexec_fn=self._preexec(cgroup), env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        finally:
            os.close(seccomp_fd)

    def _cgroup(self) -> tuple[RunCgroup | None, str]:
        cgroup, description = RunCgroup.create(self.limits)
        if cgroup is None:
            with _cgroup_lock:
                first = description not in _cgroup_warned
                _cgroup_warned.add(description)
            if first:
                log.warning("no cgroup for jailed runs here (%s): memory and processes are limited per process "
                            "only (%d MiB of address space each, %d processes of the jail uid), so one run can "
                            "hold several times its memory limit. Run the worker as root or give it a delegated "
                            "cgroup (VERTICALS_JAIL_CGROUP, docs/security.md).", description,
                            self.limits.memory_mb, self.limits.processes)
        return cgroup, description

    def run(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None,
            input: bytes | None = None, cancelled: Callable[[], bool] | None = None) -> JailResult:
        """Run ``argv`` in the jail until it ends, its wall clock runs out, it reaches its memory limit (its
        cgroup) or its disk limit (:class:`DiskWatch` on the writable folder, ``killed="disk"``, also when the
        folder is over it at the end), or ``cancelled()`` (polled a few times a second) returns true; then
        every process of the run is killed and the caller is free. stdout and stderr are streamed and each kept
        to ``output_mb`` (head and tail; what was dropped is counted). The layers verified for this machine come
        along, with ``run_cgroup``: how this run's memory, processes and CPU share were limited."""
        layers = dict(verify())
        started = time.monotonic()
        cgroup, description = self._cgroup()
        stdin = subprocess.PIPE if input is not None else subprocess.DEVNULL
        try:
            process = self.start(argv, env, cwd, stdin=stdin, cgroup=cgroup)
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            raise
        layers["run_cgroup"] = description if cgroup is not None else False
        if cgroup is None:
            layers["run_limits"] = f"per process only: {description}"
        out, err = _Capture(self.limits.output_mb * 2**20), _Capture(self.limits.output_mb * 2**20)
        disk = DiskWatch(self.writable, self.limits.disk_mb * 2**20)
        killed: str | None = None
        try:
            killed = _wait(process, out, err, input, started + self.limits.wall_seconds, cancelled, cgroup, disk)
        finally:
            kill(process)
            if cgroup is not None:
                cgroup.kill_all()
            _drain(process, out, err, grace=2.0)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("a jailed run's bwrap (pid %d) did not end after SIGKILL", process.pid)
            peak = cgroup.peak() if cgroup is not None else None
            throttled = cgroup.cpu_throttled() if cgroup is not None else None
            if cgroup is not None:
                if killed is None and cgroup.out_of_memory():
                    killed = "memory"
                cgroup.remove()
            if killed is None and disk.over():  # what it wrote last, measured once every process is gone
                killed = "disk"
        code = process.returncode if process.returncode is not None else -1
        if killed is None:
            killed = _death(code)
        stdout, stdout_dropped = out.value()
        stderr, stderr_dropped = err.value()
        return JailResult(code, stdout, stderr, killed, time.monotonic() - started, layers, stdout_dropped,
                          stderr_dropped, peak, throttled)


DISK_ENTRIES = 20_000
"""Files and folders a run may leave in its writable folder (each costs an inode and a walk of the watcher)."""


class DiskWatch:
    """The run's writable folder on the host, measured while it runs: bytes allocated (``st_blocks``: a sparse
    file counts what it holds) and entries, walked without following links. A file is capped by
    ``RLIMIT_FSIZE``, their number is not: this bounds the whole folder, as the cgroup bounds the run's memory.
    A folder the host cannot read (a run that made one unreadable) counts as over the limit."""

    def __init__(self, folder: Path, limit_bytes: int, max_entries: int = DISK_ENTRIES):
        self.folder = folder
        self.limit_bytes = limit_bytes
        self.max_entries = max_entries

    def over(self) -> bool:
        used, entries, pending = 0, 0, [str(self.folder)]
        while pending:
            try:
                with os.scandir(pending.pop()) as listing:
                    for entry in listing:
                        entries += 1
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:  # removed by the run while walked: nothing left to count
                            continue
                        used += info.st_blocks * 512
                        if entries > self.max_entries or used > self.limit_bytes:
                            return True
                        if stat.S_ISDIR(info.st_mode):
                            pending.append(entry.path)
            except FileNotFoundError:  # a folder removed while walked: the rest is still counted
                continue
            except OSError:  # unreadable to the host (or otherwise hidden): not measured, so not allowed
                return True
        return False


POLL_SECONDS = 0.1  # how often a waiting run looks at its clock, its cancel callable and its cgroup


def _wait(process: subprocess.Popen, out: _Capture, err: _Capture, input: bytes | None, deadline: float,
          cancelled: Callable[[], bool] | None, cgroup: RunCgroup | None,
          disk: DiskWatch | None = None) -> str | None:
    """Stream the run's outputs until it ends; a reason ("timeout", "cancelled", "memory", "disk") if it must be
    killed."""
    selector = selectors.DefaultSelector()
    captures = {}
    for stream, capture in ((process.stdout, out), (process.stderr, err)):
        if stream is not None:
            fd = stream.fileno()
            os.set_blocking(fd, False)
            with contextlib.suppress(OSError):  # a larger pipe: fewer wake-ups for a chatty run
                fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
            selector.register(fd, selectors.EVENT_READ)
            captures[fd] = capture
    pending = memoryview(input or b"")
    if process.stdin is not None:
        if pending:
            os.set_blocking(process.stdin.fileno(), False)
            selector.register(process.stdin.fileno(), selectors.EVENT_WRITE)
        else:
            process.stdin.close()
    exited_at: float | None = None
    checked = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return "timeout"
            if now - checked >= POLL_SECONDS:  # the slower checks, a few times a second whatever the output
                checked = now
                if cancelled is not None:
                    try:
                        if cancelled():
                            return "cancelled"
                    except Exception:  # a broken callable must not leave a jail running
                        log.debug("the cancel check of a jailed run failed", exc_info=True)
                if cgroup is not None and cgroup.out_of_memory():
                    return "memory"
                if disk is not None and disk.over():
                    return "disk"
                if process.poll() is not None:
                    if not captures:
                        return None
                    exited_at = exited_at or now
                    if now - exited_at > 1.0:  # bwrap is gone; whatever still holds a pipe is killed below
                        return None
            if not selector.get_map():
                time.sleep(min(POLL_SECONDS, max(0.0, deadline - now)))
                continue
            for key, _ in selector.select(timeout=min(POLL_SECONDS, max(0.0, deadline - now))):
                fd = key.fd
                if fd in captures:
                    if not _read_available(fd, captures[fd]):
                        selector.unregister(fd)
                        del captures[fd]
                        checked = 0.0  # look at the process now: it has probably ended
                    continue
                try:
                    written = os.write(fd, pending[: 1 << 16])
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    written = len(pending)
                pending = pending[written:]
                if not pending:
                    selector.unregister(fd)
                    process.stdin.close()  # type: ignore[union-attr]
    finally:
        selector.close()


def _read_available(fd: int, capture: _Capture, most: int = 16 << 20) -> bool:
    """Read what a non-blocking pipe holds now (at most ``most`` bytes per call); False at its end."""
    got = 0
    while got < most:
        try:
            data = os.read(fd, 1 << 20)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        capture.add(data)
        got += len(data)
    return True


def _drain(process: subprocess.Popen, out: _Capture, err: _Capture, grace: float) -> None:
    """After the kill: read what is left in the pipes (capped) for at most ``grace`` seconds, then close them."""
    streams = {s.fileno(): (s, c) for s, c in ((process.stdout, out), (process.stderr, err))
               if s is not None and not s.closed}
    deadline = time.monotonic() + grace
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.05):
                os.set_blocking(key.fd, False)
                if not _read_available(key.fd, streams[key.fd][1]):
                    selector.unregister(key.fd)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


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
def opens(family, kind):
    try:
        socket.socket(family, kind).close()
        return True
    except OSError:
        return False
out["packet_socket"] = opens(socket.AF_PACKET, socket.SOCK_RAW)
out["inet_socket"] = opens(socket.AF_INET, socket.SOCK_STREAM)
out["vsock_socket"] = opens(40, socket.SOCK_STREAM)
out["unix_socket"] = opens(socket.AF_UNIX, socket.SOCK_STREAM)
params = ctypes.create_string_buffer(120)
fd = libc.syscall(425, 4, params)  # io_uring_setup(4, &params): one number on every architecture
out["io_uring"] = fd >= 0
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
    folder = private_dir("probe")
    try:
        work = folder / "work"
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
    finally:
        remove_private_dir(folder)
    payload_uids = host_uids.get(payload, []) if payload else []
    layers: dict[str, object] = {
        "bubblewrap": True,
        "host_uid": payload_uids[0] if payload_uids else None,
        "unprivileged_user": bool(payload_uids) and all(u != 0 for u in payload_uids) and seen["uid_inside"] != 0,
        **{f"{name}_namespace": unshared for name, unshared in namespaces.items()},
        "no_capabilities": seen["capabilities"] == 0,
        "no_new_privs": seen["no_new_privs"],
        "seccomp": (seen["seccomp_mode"] == 2 and not seen["mount"] and not seen["packet_socket"]
                    and not seen["inet_socket"] and not seen["vsock_socket"] and not seen["io_uring"]
                    and seen["unix_socket"]),
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
