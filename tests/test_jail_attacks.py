"""Attacks on the code jail (verticals.jail), run as an attacker would, from inside it.

Every test here runs a real attack from a payload in the jail and asserts the attack *failed* — on the host,
where possible (the marker file does not exist, the listener saw no connection, no jailed process is left),
not by trusting the payload's own account. Each attack runs twice: with the test process as root (as CI
runs) and as an ordinary user (a uid with no account, through the system interpreter, since a user cannot
read a root-owned virtualenv).
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

import verticals.jail as jail_module

ROOT = Path(__file__).resolve().parents[1]
ORDINARY_UID = 4242
IS_ROOT = os.geteuid() == 0
MODES = ["root", "user"] if IS_ROOT else ["user"]


def _system_python() -> str:
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("the 'ordinary user' attack tests need a system python3 (apt-get install python3)")


@pytest.fixture(scope="module")
def kit():
    """Runner, jail module and pyseccomp copied where an ordinary user can read them; host secrets to steal."""
    base = Path(tempfile.mkdtemp(prefix="vjail-kit-"))  # not under pytest's 0700 folder: the user must reach it
    os.chmod(base, 0o755)
    kit_dir = base / "kit"
    kit_dir.mkdir(mode=0o755)
    shutil.copy(ROOT / "tests" / "jail_runner.py", kit_dir / "jail_runner.py")
    shutil.copy(jail_module.__file__, kit_dir / "jail.py")
    shutil.copy(importlib.util.find_spec("pyseccomp").origin, kit_dir / "pyseccomp.py")
    host = base / "host"  # what an attacker wants: a world-readable database, a world-writable folder
    host.mkdir()
    os.chmod(host, 0o777)
    token = "tok-" + uuid.uuid4().hex
    (host / "api.db").write_text(f"tenant A's job input: {token}\n")
    os.chmod(host / "api.db", 0o644)
    for path in base.rglob("*"):
        os.chmod(path, os.stat(path).st_mode | 0o044 | (0o011 if path.is_dir() else 0))
    yield {"base": base, "kit": kit_dir, "host": host, "token": token}
    shutil.rmtree(base, ignore_errors=True)


class Delegated:
    """A cgroup an operator delegates to the ordinary user with scripts/delegate_jail_cgroup.py, as
    docs/security.md ("Limits per run") tells them to: the user's runner starts in its ``worker`` leaf (as root,
    before dropping to the user) and its runs' cgroups go beside that leaf."""

    SCRIPT = ROOT / "scripts" / "delegate_jail_cgroup.py"

    def __init__(self, uid: int, ceiling_mb: int = 2048):
        self.uid = uid
        done = subprocess.run([sys.executable, str(self.SCRIPT), "--user", str(uid), "--memory-mb", str(ceiling_mb)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        self.setting = values["VERTICALS_JAIL_CGROUP"]
        self.leaves = values["WORKER_LEAVES"].split(":")

    def join_runner(self) -> None:  # in the runner's child process, as root, before it drops to the user
        for leaf in self.leaves:
            with open(leaf, "w") as handle:
                handle.write(str(os.getpid()))

    def remove(self) -> None:
        subprocess.run([sys.executable, str(self.SCRIPT), "--user", str(self.uid), "--remove"], timeout=60,
                       capture_output=True)


def run_attack(kit, mode: str, payload: str, limits: dict | None = None, name: str = "attack",
               cgroup: Delegated | None = None, timeout: float = 180, env_extra: dict | None = None,
               **runner: object) -> dict:
    """Run ``payload`` (Python source) in a jail started by a root or an ordinary-user process.

    ``runner``: more of tests/jail_runner.py's spec (``read``, ``read_max``, ``cancel_after``,
    ``host_memory_mb``); ``cgroup``: a cgroup delegated to the ordinary user, which its runner starts in.
    """
    work_parent = kit["base"] / f"{name}-{mode}-{uuid.uuid4().hex[:6]}"
    work_parent.mkdir(mode=0o755)
    work = work_parent / "work"
    work.mkdir(mode=0o755)
    (work / "payload.py").write_text(textwrap.dedent(payload))
    spec = {"jail_module": str(kit["kit"] / "jail.py"), "sys_path": [str(kit["kit"])], "work": str(work),
            "payload": str(work / "payload.py"), "limits": {"wall_seconds": 60, **(limits or {})}, **runner}
    env = {**os.environ, "VERTICALS_TEST_SECRET": kit["token"], **(env_extra or {})}
    preexec = None
    if cgroup is not None:
        env["VERTICALS_JAIL_CGROUP"] = cgroup.setting
        preexec = cgroup.join_runner
    if mode == "root":
        command = [sys.executable, str(kit["kit"] / "jail_runner.py"), json.dumps(spec)]
    else:
        python = _system_python()
        if IS_ROOT:
            for path in [work, *work.rglob("*")]:
                os.chown(path, ORDINARY_UID, ORDINARY_UID)
            command = ["setpriv", f"--reuid={ORDINARY_UID}", f"--regid={ORDINARY_UID}", "--clear-groups",
                       python, "-I", str(kit["kit"] / "jail_runner.py"), json.dumps(spec)]
            env["HOME"] = str(work_parent)
        else:
            command = [python, "-I", str(kit["kit"] / "jail_runner.py"), json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=work_parent,
                          preexec_fn=preexec)
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert "unavailable" not in outcome, outcome.get("unavailable")
    outcome["work"] = work
    outcome["runner_stderr"] = done.stderr
    return outcome


def report(outcome: dict) -> dict:
    lines = [line for line in outcome["stdout"].splitlines() if line.startswith("{")]
    assert lines, f"payload printed no report; stderr: {outcome['stderr']}"
    return json.loads(lines[-1])


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


def test_layers_are_verified_not_intended(kit, mode):
    outcome = run_attack(kit, mode, "print('{}')")
    layers = outcome["layers"]
    for layer in ("unprivileged_user", "user_namespace", "pid_namespace", "net_namespace", "ipc_namespace",
                  "uts_namespace", "mnt_namespace", "no_capabilities", "no_new_privs", "seccomp",
                  "user_namespaces_blocked", "network_isolated", "read_only_root", "host_hidden"):
        assert layers[layer] is True, layer
    assert layers["host_uid"] != 0
    if mode == "user" and IS_ROOT:
        assert layers["host_uid"] == ORDINARY_UID


SHELL_ESCAPE = """
import _posixsubprocess, json, os, subprocess
script = r'''
id -u
mount -o remount,bind,rw / && echo REMOUNTED
cat /etc/shadow && echo READ_SHADOW
cat {db} && echo READ_DB
echo pwned > {marker} && echo WROTE_HOST
echo '|/tmp/x' > /proc/sys/kernel/core_pattern && echo WROTE_CORE_PATTERN
ls /sys/fs/cgroup && echo SAW_CGROUPS
echo done
'''
# subprocess goes through _posixsubprocess.fork_exec: the call the old audit hook never saw
out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
print(json.dumps({{"stdout": out.stdout, "stderr": out.stderr[-1500:]}}))
"""


def test_shell_started_through_fork_exec_stays_jailed(kit, mode):
    marker = kit["host"] / f"marker-{mode}"
    outcome = run_attack(kit, mode, SHELL_ESCAPE.format(db=kit["host"] / "api.db", marker=marker), name="shell")
    seen = report(outcome)
    shell_out = seen["stdout"]
    assert "done" in shell_out  # the shell ran: the attack was really attempted
    assert shell_out.splitlines()[0].strip() != "0"  # not uid 0, even inside
    for success in ("REMOUNTED", "READ_SHADOW", "READ_DB", "WROTE_HOST", "WROTE_CORE_PATTERN", "SAW_CGROUPS"):
        assert success not in shell_out, success
    assert kit["token"] not in outcome["stdout"] + outcome["stderr"]
    assert not marker.exists()
    if os.access("/etc/shadow", os.R_OK):
        shadow = Path("/etc/shadow").read_text(errors="replace")
        first = shadow.splitlines()[0] if shadow else ""
        assert not first or first not in outcome["stdout"]


PYTHON_ESCAPES = """
import ctypes, glob, json, os, socket
libc = ctypes.CDLL(None, use_errno=True)
done = {{}}
def attempt(name, function):
    try:
        done[name] = bool(function())
    except Exception as error:
        done[name] = False
def read(path):
    with open(path) as handle:
        return handle.read()
def write(path):
    with open(path, "w") as handle:
        handle.write("x")
    return True
attempt("read_shadow", lambda: read("/etc/shadow"))
attempt("read_db", lambda: {token!r} in read({db!r}))
attempt("write_outside", lambda: write({marker!r}))
attempt("setuid_root", lambda: os.setuid(0) is None)
attempt("unshare_user", lambda: libc.unshare(0x10000000) == 0)
attempt("unshare_mount", lambda: libc.unshare(0x00020000) == 0)
attempt("mount_tmpfs", lambda: libc.mount(b"none", b"/usr", b"tmpfs", 0, None) == 0)
attempt("ptrace_init", lambda: libc.ptrace(16, 1, 0, 0) == 0)
attempt("ptrace_parent", lambda: libc.ptrace(16, os.getppid(), 0, 0) == 0)
attempt("keyctl", lambda: libc.syscall(250, 0, 0, 0, 0, 0) >= 0)
attempt("bpf", lambda: libc.syscall(321, 0, 0, 0) >= 0)
attempt("raw_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) is not None)
attempt("packet_socket", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW) is not None)
def connect():
    with socket.create_connection(("127.0.0.1", {port}), timeout=3) as conn:
        conn.sendall(b"escaped")
    return True
attempt("connect_host_listener", connect)
def environ():
    found = {token!r} in str(dict(os.environ))
    for path in glob.glob("/proc/*/environ"):
        try:
            found = found or {token!r}.encode() in open(path, "rb").read()
        except OSError:
            pass
    return found
attempt("read_parent_environment", environ)
attempt("write_core_pattern", lambda: write("/proc/sys/kernel/core_pattern"))
attempt("see_host_processes", lambda: len([p for p in os.listdir("/proc") if p.isdigit()]) > 10)
print(json.dumps(done))
"""


def test_python_level_escapes_fail(kit, mode):
    marker = kit["host"] / f"py-marker-{mode}"
    accepted: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        listener.settimeout(0.5)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except (TimeoutError, OSError):
                    continue
                with conn:
                    accepted.append(conn.recv(100))

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        payload = PYTHON_ESCAPES.format(token=kit["token"], db=str(kit["host"] / "api.db"), marker=str(marker),
                                        port=listener.getsockname()[1])
        outcome = run_attack(kit, mode, payload, name="python")
        stop.set()
        thread.join(2)
    seen = report(outcome)
    assert len(seen) == 17
    escaped = [name for name, succeeded in seen.items() if succeeded]
    assert escaped == [], escaped
    assert accepted == []
    assert not marker.exists()
    assert kit["token"] not in outcome["stdout"]


def _jail_processes(uid: int, marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


FORK_BOMB = """
import json, os, time
forked, error = 0, None
try:
    while forked < 5000:
        pid = os.fork()
        if pid == 0:
            time.sleep(120)
            os._exit(0)
        forked += 1
except OSError as exc:
    error = type(exc).__name__
print(json.dumps({"forked": forked, "error": error}), flush=True)
time.sleep(120)  # hold the children: the wall clock must still end every process of the jail
"""


def test_fork_bomb_is_bounded_and_cleaned_up(kit, mode):
    outcome = run_attack(kit, mode, FORK_BOMB, limits={"processes": 24, "wall_seconds": 8}, name="forkbomb")
    seen = report(outcome)
    assert seen["forked"] < 24
    assert seen["error"] == "BlockingIOError"  # EAGAIN from RLIMIT_NPROC
    assert outcome["killed"] == "timeout"
    assert _jail_processes(0, str(outcome["work"] / "payload.py")) == []


def test_large_allocation_fails(kit, mode):
    payload = """
    import json
    try:
        block = bytearray(8 * 1024**3)
        print(json.dumps({"allocated": len(block)}))
    except MemoryError:
        print(json.dumps({"allocated": 0}))
    """
    outcome = run_attack(kit, mode, payload, limits={"memory_mb": 512}, name="memory")
    assert report(outcome)["allocated"] == 0


def test_cpu_and_wall_limits_end_a_busy_loop(kit, mode):
    outcome = run_attack(kit, mode, "while True:\n    pass\n", limits={"cpu_seconds": 2, "wall_seconds": 20},
                         name="cpu")
    assert outcome["killed"] in {"cpu", "killed"}
    assert outcome["seconds"] < 20


def test_limits_cannot_be_raised_past_the_server_maxima(monkeypatch):
    monkeypatch.setenv("VERTICALS_JAIL_MAX_MEMORY_MB", "1024")
    limits = jail_module.JailLimits(memory_mb=1_000_000, cpu_seconds=10**9, wall_seconds=10**9).clamped()
    assert limits.memory_mb == 1024
    assert limits.cpu_seconds == 300
    assert limits.wall_seconds == 600


def test_missing_bubblewrap_fails_closed(monkeypatch, tmp_path):
    jail_module._bwrap.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on PATH
    try:
        jail = jail_module.Jail(tmp_path)
        with pytest.raises(jail_module.JailUnavailable, match="bubblewrap"):
            jail.command(["true"], 0)
    finally:
        jail_module._bwrap.cache_clear()


def test_exposing_a_host_folder_wholesale_is_refused(tmp_path):
    for folder in ("/", "/etc", "/root", "/home"):
        with pytest.raises(jail_module.JailUnavailable, match="expose"):
            jail_module.Jail(tmp_path, read_only=[Path(folder)])


def test_code_tasks_go_to_their_own_worker_queue():
    from verticals.workers.celery_app import queue_of

    class Plain:
        device = "gpu"

    class RunsCode:
        device = "cpu"
        executes_code = True

    assert queue_of(Plain()) == "gpu"
    assert queue_of(RunsCode()) == "code"


# ---------------------------------------------------------------- what the jail returns (issue 22, item 3)

STDOUT_FLOOD = """
import os
block = b"x" * 2**20
for _ in range(512):  # 512 MiB to stdout, then a last line the host should still see
    os.write(1, block)
os.write(1, b"\\nlast line\\n")
"""


def test_a_stdout_flood_is_capped_and_the_host_stays_small(kit, mode):
    # the host runner may use 1 GiB of address space: holding the flood (as communicate() did) cannot fit
    outcome = run_attack(kit, mode, STDOUT_FLOOD, limits={"wall_seconds": 60}, name="flood", host_memory_mb=1024)
    assert outcome["killed"] is None
    cap = jail_module.JailLimits().output_mb * 2**20
    assert outcome["stdout_bytes"] <= cap + 100  # the cap, and the marker line saying what was dropped
    assert outcome["stdout_dropped"] >= 512 * 2**20 - cap
    assert outcome["stdout"].rstrip().endswith("last line")  # the tail is kept: the end of the output
    assert outcome["runner_max_rss_mb"] < 200


HOSTILE_FILES = """
import os
os.mkfifo("fifo.jsonl")  # a reader that opens it blocks until a writer comes: none will
os.symlink("/dev/zero", "zero.jsonl")  # endless
os.symlink({db!r}, "secret.jsonl")  # a host file the jail cannot read itself
os.symlink("/", "root")  # a folder on the way
os.mkdir("folder.jsonl")
with open("big.jsonl", "wb") as handle:
    handle.truncate(3 * 2**20)
with open("ok.jsonl", "w") as handle:
    handle.write('{{"event": "done"}}\\n')
print("{{}}")
"""
HOSTILE_NAMES = ["fifo.jsonl", "zero.jsonl", "secret.jsonl", "root/etc/passwd", "folder.jsonl", "big.jsonl",
                 "ok.jsonl"]


def test_files_a_run_leaves_are_read_bounded_and_never_followed(kit, mode):
    outcome = run_attack(kit, mode, HOSTILE_FILES.format(db=str(kit["host"] / "api.db")), name="files",
                         read=HOSTILE_NAMES, read_max=2**20, host_memory_mb=1024, timeout=90)
    files = outcome["files"]
    for name in ("fifo.jsonl", "zero.jsonl", "secret.jsonl", "root/etc/passwd", "folder.jsonl"):
        assert "refused" in files[name], (name, files[name])
        assert files[name]["seconds"] < 5
    assert files["big.jsonl"]["read"] == 2**20 and files["big.jsonl"]["truncated"]
    assert files["ok.jsonl"] == {**files["ok.jsonl"], "read": 18, "truncated": False}
    assert kit["token"] not in json.dumps(files)
    assert outcome["runner_max_rss_mb"] < 200


CANCEL_IGNORED = """
import signal, time
for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(number, signal.SIG_IGN)
print("{}", flush=True)
while True:
    time.sleep(1)
"""


def test_a_cancel_ends_the_run_and_frees_the_caller(kit, mode):
    outcome = run_attack(kit, mode, CANCEL_IGNORED, limits={"wall_seconds": 60}, name="cancel", cancel_after=1.5)
    assert outcome["killed"] == "cancelled"
    assert outcome["waited"] < 10  # the caller was free long before the 60 s wall clock
    assert _jail_processes(0, str(outcome["work"] / "payload.py")) == []


def _testgen_sandbox_script(target: str, wall: float) -> str:
    return f"""
import json, resource, sys, time
from verticals_testgen.sandbox import Limits, Sandbox
from verticals_testgen.target import from_source
target = from_source({target!r}, "hostile_record")
box = Sandbox(Limits(wall_seconds={wall}))
started = time.monotonic()
try:
    run = box.run({{"mode": "run", "files": [], "test_timeout": 5,
                   "target": {{"name": target.name, "file": target.file, "sys_path": target.sys_path}}}},
                  target.sys_path)
finally:
    box.close()
print(json.dumps({{"events": len(run.events), "seconds": time.monotonic() - started, "stderr": run.stderr[-300:],
                  "max_rss_mb": int(next(line for line in open("/proc/self/status")  # VmHWM: since exec
                                         if line.startswith("VmHWM:")).split()[1]) / 1024}}))
"""


RECORD_TRICKS = {
    "fifo": "os.unlink(path)\nos.mkfifo(path)",
    "dev_zero": "os.unlink(path)\nos.symlink('/dev/zero', path)",
}


@pytest.mark.skipif(not IS_ROOT, reason="runs testgen's sandbox from the virtualenv, as CI does (root)")
@pytest.mark.parametrize("trick", sorted(RECORD_TRICKS))
def test_testgen_sandbox_survives_a_target_that_replaces_its_record_file(trick):
    """The finding of issue 22: a FIFO record hung the worker thread forever; /dev/zero read until memory ran out."""
    target = ("import json, os, sys\n"
              "config = json.load(open(sys.argv[1]))\n"
              "path = os.path.join(config['sandbox'], config['record'])\n"
              + RECORD_TRICKS[trick] + "\n")
    wall = 20.0
    script = _testgen_sandbox_script(target, wall)

    def limit() -> None:  # an attack that works must not take the test machine with it
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=wall + 40,
                          preexec_fn=limit, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-1500:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["seconds"] < wall + 10  # the time budget plus a grace
    assert seen["events"] == 0
    assert seen["max_rss_mb"] < 1024


# ---------------------------------------------------------------- limits per run (issue 22, item 4)

CHILDREN_ALLOCATE = """
import os, time
for index in range(5):  # each child holds 300 MB, one after the other: 1.5 GB for the run on a per-process limit
    read, write = os.pipe()
    if os.fork() == 0:
        block = b"x" * (300 * 2**20)
        os.write(write, b"1")
        time.sleep(60)
        os._exit(0)
    os.close(write)
    if os.read(read, 1) == b"1":
        print("holding", index, flush=True)
print("all held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def delegated(mode):
    """The ordinary user's cgroup, delegated by root (as docs/security.md tells an operator); None for root."""
    if mode != "user":
        yield None
        return
    if not IS_ROOT:
        pytest.skip("delegating a cgroup to the ordinary user needs root (CI runs as root)")
    delegation = Delegated(ORDINARY_UID)
    try:
        yield delegation
    finally:
        delegation.remove()


def test_children_allocating_past_the_run_limit_kill_the_run(kit, mode, delegated):
    outcome = run_attack(kit, mode, CHILDREN_ALLOCATE, limits={"memory_mb": 512, "wall_seconds": 60},
                         name="children", cgroup=delegated)
    held = [line for line in outcome["stdout"].splitlines() if line.startswith("holding")]
    assert len(held) < 2, outcome["stdout"]  # 512 MiB for the whole run: never two children of 300 MB
    assert "all held" not in outcome["stdout"]
    assert outcome["killed"] == "memory"
    assert outcome["seconds"] < 50  # killed by the memory limit, not by the wall clock
    assert _jail_processes(0, str(outcome["work"] / "payload.py")) == []


DISK_FILL = """
import os
block = b"x" * (16 * 2**20)
for index in range(80):  # 80 files of 32 MiB, each under the file size limit: 2.5 GiB for the run
    with open(f"fill-{index}.bin", "wb") as handle:
        handle.write(block)
        handle.write(block)
    print("wrote", index, flush=True)
print("all written", flush=True)
"""

MANY_FILES = """
import os
os.mkdir("many")
for index in range(60_000):  # empty files: no bytes, but an inode each and a longer walk for the host
    open(f"many/{index}", "w").close()
print("all made", flush=True)
"""


def _folder_bytes(folder):
    return sum(os.lstat(path).st_blocks * 512 for path in folder.rglob("*"))


@pytest.mark.parametrize("payload, limit_mb", [(DISK_FILL, 128), (MANY_FILES, 512)], ids=["bytes", "files"])
def test_a_run_filling_its_writable_folder_is_killed_at_its_disk_limit(kit, mode, payload, limit_mb):
    """Each file is capped (RLIMIT_FSIZE), their number is not: the run's folder as a whole is (DiskWatch)."""
    outcome = run_attack(kit, mode, payload, limits={"disk_mb": limit_mb, "file_size_mb": 64, "wall_seconds": 60},
                         name="disk")
    assert outcome["killed"] == "disk", outcome
    assert "all written" not in outcome["stdout"] and "all made" not in outcome["stdout"]
    assert outcome["seconds"] < 50  # killed by the disk limit, not by the wall clock
    assert _folder_bytes(outcome["work"]) < 80 * 32 * 2**20 / 2  # far from what it set out to write
    assert _jail_processes(0, str(outcome["work"] / "payload.py")) == []


BUSY_CHILDREN = """
import json, os, time
wall = 3.0
pipes = []
started = time.monotonic()
for index in range(8):  # 8 processes spinning: every core of the worker, each well under its own RLIMIT_CPU
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        end = time.monotonic() + wall
        while time.monotonic() < end:
            pass
        os.write(write, str(time.process_time()).encode())
        os._exit(0)
    os.close(write)
    pipes.append(read)
used = sum(float(os.read(read, 64)) for read in pipes)
for _ in pipes:
    os.wait()
print(json.dumps({"cpu": used, "wall": time.monotonic() - started}), flush=True)
"""


def test_a_run_of_many_busy_processes_gets_its_cpu_share_not_every_core(kit, mode, delegated):
    """RLIMIT_CPU caps each process, not their sum: the run's cgroup caps the whole run (cpus=0.25: a quarter of
    a CPU-second per second). Unthrottled, 8 spinning processes take every core of this machine for 3 s."""
    outcome = run_attack(kit, mode, BUSY_CHILDREN, limits={"cpus": 0.25, "wall_seconds": 60}, name="cpu",
                         cgroup=delegated)
    assert outcome["killed"] is None, outcome
    spent = json.loads(outcome["stdout"].strip().splitlines()[-1])
    assert "cpu" in outcome["run_layers"]["run_cgroup"], outcome["run_layers"]
    assert outcome["cpu_throttled"] > 0.5, outcome  # the kernel held them back (on a loaded machine as well)
    # at most the share of the time they ran, with room for the kernel's accounting (a period's burst per child)
    assert spent["cpu"] <= 0.25 * spent["wall"] * 1.5 + 0.3, spent
    assert _jail_processes(0, str(outcome["work"] / "payload.py")) == []


def test_without_a_cgroup_the_run_says_what_still_holds(kit, mode):
    outcome = run_attack(kit, mode, "print('{}')", name="nocgroup", env_extra={"VERTICALS_JAIL_CGROUP": "off"})
    assert outcome["run_layers"]["run_cgroup"] is False
    assert "per process only" in outcome["run_layers"]["run_limits"]
    assert "no cgroup for jailed runs here" in outcome["runner_stderr"]


# ---------------------------------------------------------------- seccomp allow-list (issue 22, item 5)

IO_URING_SOCKETS = """
import ctypes, json, mmap, os, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def uring_socket(domain, kind):
    # raw io_uring (no liburing): set up a ring, submit IORING_OP_SOCKET, read its completion
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(425, 8, params)  # io_uring_setup
    if fd < 0:
        return "setup refused, errno %d" % ctypes.get_errno()
    raw = params.raw
    sq_entries, cq_entries = struct.unpack_from("II", raw, 0)
    features = struct.unpack_from("I", raw, 20)[0]
    sq_head, sq_tail, sq_mask, _, _, _, sq_array = struct.unpack_from("7I", raw, 40)
    cq_head, cq_tail, cq_mask, _, _, cqes = struct.unpack_from("6I", raw, 80)
    both = mmap.PROT_READ | mmap.PROT_WRITE
    sq = mmap.mmap(fd, sq_array + sq_entries * 4, mmap.MAP_SHARED, both, offset=0)
    cq = sq if features & 1 else mmap.mmap(fd, cqes + cq_entries * 16, mmap.MAP_SHARED, both, offset=0x8000000)
    sqes = mmap.mmap(fd, sq_entries * 64, mmap.MAP_SHARED, both, offset=0x10000000)
    sqes[0:64] = struct.pack("<BBHiQQIIQ", 45, 0, 0, domain, kind, 0, 0, 0, 7) + bytes(24)  # IORING_OP_SOCKET
    tail = struct.unpack_from("I", sq, sq_tail)[0]
    struct.pack_into("I", sq, sq_array + 4 * (tail & struct.unpack_from("I", sq, sq_mask)[0]), 0)
    struct.pack_into("I", sq, sq_tail, tail + 1)
    if libc.syscall(426, fd, 1, 1, 1, None, 0) < 0:  # io_uring_enter(fd, 1, 1, IORING_ENTER_GETEVENTS)
        return "enter refused, errno %d" % ctypes.get_errno()
    head = struct.unpack_from("I", cq, cq_head)[0]
    return struct.unpack_from("<Qi", cq, cqes + 16 * (head & struct.unpack_from("I", cq, cq_mask)[0]))[1]

out = {"netlink": uring_socket(16, 3), "inet": uring_socket(2, 1), "vsock": uring_socket(40, 1)}
print(json.dumps(out))
"""


def test_io_uring_cannot_open_the_sockets_socket_refuses(kit, mode):
    seen = report(run_attack(kit, mode, IO_URING_SOCKETS, name="uring"))
    opened = {family: result for family, result in seen.items() if isinstance(result, int) and result >= 0}
    assert opened == {}, seen  # an fd >= 0 is a netlink/inet/vsock socket made behind socket()'s back
    assert all(str(result).startswith("setup refused") for result in seen.values()), seen


SOCKET_FAMILIES = """
import json, socket
opened, unix = [], False
for family in range(0, 46):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET):
        try:
            handle = socket.socket(family, kind)
        except OSError:
            continue
        handle.close()
        if family == socket.AF_UNIX:
            unix = True
        else:
            opened.append([family, kind])
pair = []
for family in (socket.AF_INET, 40):
    try:
        socket.socketpair(family, socket.SOCK_STREAM)
        pair.append(family)
    except OSError:
        pass
left, right = socket.socketpair()  # AF_UNIX: what Python's own machinery (asyncio, multiprocessing) uses
left.sendall(b"ok")
print(json.dumps({"opened": opened, "pair": pair, "unix": unix, "unix_pair": right.recv(2) == b"ok"}))
"""


def test_only_unix_sockets_open_vsock_and_inet_do_not(kit, mode):
    seen = report(run_attack(kit, mode, SOCKET_FAMILIES, name="families"))
    assert seen["opened"] == [], seen["opened"]  # AF_VSOCK (40) crosses the network namespace; none may open
    assert seen["pair"] == []
    assert seen["unix"] and seen["unix_pair"]


SYSCALL_NOT_LISTED = """
import ctypes, errno, json
libc = ctypes.CDLL(None, use_errno=True)
# calls no jailed program needs, which a deny-list did not name: each must be refused
calls = {"fanotify_init": (300, 0, 0), "process_madvise": (440, 0, 0, 0, 0, 0), "memfd_secret": (447, 0),
         "landlock_like_future_call": (511, 0, 0, 0), "move_pages": (279, 0, 0, 0, 0, 0, 0)}
out = {}
for name, (number, *args) in calls.items():
    result = libc.syscall(number, *args)
    out[name] = "refused" if result < 0 and ctypes.get_errno() == errno.ENOSYS else result
print(json.dumps(out))
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers of x86-64")
def test_calls_off_the_allow_list_are_refused(kit, mode):
    seen = report(run_attack(kit, mode, SYSCALL_NOT_LISTED, name="unlisted"))
    assert set(seen.values()) == {"refused"}, seen


# ---------------------------------------------------------------- tenant work folders


@pytest.mark.skipif(not IS_ROOT, reason="reads as another local user (setpriv), as CI can (root)")
def test_a_killed_workers_tenant_source_is_private_and_swept():
    """A worker that made a tenant's source folder dies by SIGKILL: another local user cannot read the code
    meanwhile, and the next process that makes a work folder removes it."""
    secret = "tenant-code-" + uuid.uuid4().hex
    script = textwrap.dedent(f"""
        import os, signal
        from verticals_testgen.target import from_source
        target = from_source("SECRET = {secret!r}\\n", "tenant_module")
        print(target.file, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr[-1000:]
    source = Path(done.stdout.strip().splitlines()[-1])
    assert secret in source.read_text()  # the killed worker left it behind
    peek = subprocess.run(["setpriv", f"--reuid={ORDINARY_UID}", f"--regid={ORDINARY_UID}", "--clear-groups",
                           "cat", str(source)], capture_output=True, text=True, timeout=30)
    assert secret not in peek.stdout
    subprocess.run([sys.executable, "-c", "from verticals.jail import private_dir, remove_private_dir\n"
                    "remove_private_dir(private_dir('next'))"], check=True, timeout=120)
    assert not source.exists()


def test_cancelling_a_testgen_job_ends_its_jailed_run():
    """The job's cancel reaches the jail (RunContext.cancelled): a target that never finishes importing no longer
    holds its worker until every wall clock of the module's time budget has run out."""
    from verticals.core.jobs.engine import submit_job
    from verticals.core.jobs.executor import LocalExecutor
    from verticals.core.store import open_store
    from verticals.registry import get_registry

    store, registry = open_store(), get_registry(refresh=True)
    source = "import time\ntime.sleep(600)\n\ndef double(x):\n    return 2 * x\n"
    job_id = submit_job(store, registry, "testgen.generate", [{"module": "never_imports", "source": source}],
                        params={"strategies": ["observed"], "time_budget": 300})
    timer = threading.Timer(5.0, store.request_cancel, args=(job_id,))
    timer.start()
    started = time.monotonic()
    try:
        LocalExecutor(store, registry).execute(job_id)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 60  # without the cancel: 300 s of budget, a 90 s wall clock per run
    assert _jail_processes(0, f"vjail-{os.getpid()}.") == []  # no harness of this process's sandboxes is left


def test_testgen_sandbox_never_writes_through_what_a_run_planted(tmp_path):
    """A run leaves symlinks where the host writes next (the next run's config file, the tmp folder): the host
    replaces them; it never writes through them (as root, into any file of the host)."""
    from verticals_testgen.sandbox import Limits, Sandbox
    from verticals_testgen.target import from_source

    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    target = from_source("import json, os, sys\n"
                         "folder = json.load(open(sys.argv[1]))['sandbox']\n"
                         f"os.symlink({str(victim)!r}, os.path.join(folder, 'config2.json'))\n"
                         "os.rename(os.path.join(folder, 'tmp'), os.path.join(folder, 'old-tmp'))\n"
                         "os.symlink('/', os.path.join(folder, 'tmp'))\n", "planter")
    config = {"mode": "run", "files": [], "test_timeout": 5,
              "target": {"name": target.name, "file": target.file, "sys_path": target.sys_path}}
    box = Sandbox(Limits(wall_seconds=30))
    try:
        box.run(config, target.sys_path)
        assert (box.dir / "config2.json").is_symlink()  # the attack was really made
        box.reset(keep=("config2.json",))  # whatever survives a reset
        second = box.run(config, target.sys_path)
        assert not (box.dir / "tmp").is_symlink()
    finally:
        box.close()
        shutil.rmtree(target.workdir or "", ignore_errors=True)
    assert victim.read_text() == "untouched"
    assert second.returncode is not None
