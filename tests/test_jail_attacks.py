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
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
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


def run_attack(kit, mode: str, payload: str, limits: dict | None = None, name: str = "attack") -> dict:
    """Run ``payload`` (Python source) in a jail started by a root or an ordinary-user process."""
    work_parent = kit["base"] / f"{name}-{mode}-{uuid.uuid4().hex[:6]}"
    work_parent.mkdir(mode=0o755)
    work = work_parent / "work"
    work.mkdir(mode=0o755)
    (work / "payload.py").write_text(textwrap.dedent(payload))
    spec = {"jail_module": str(kit["kit"] / "jail.py"), "sys_path": [str(kit["kit"])], "work": str(work),
            "payload": str(work / "payload.py"), "limits": {"wall_seconds": 60, **(limits or {})}}
    env = {**os.environ, "VERTICALS_TEST_SECRET": kit["token"]}
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
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, cwd=work_parent)
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert "unavailable" not in outcome, outcome.get("unavailable")
    outcome["work"] = work
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
