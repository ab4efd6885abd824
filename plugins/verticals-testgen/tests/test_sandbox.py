"""Attacks from candidate tests and from the target module itself: contained, reported failed, nothing leaks.

The OS-level attacks (as root and as an ordinary user) are in tests/test_jail_attacks.py; these run them
through testgen's own path: the jailed harness, the screening of candidates, the generated output.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest
from verticals_testgen.candidates import Candidate
from verticals_testgen.pipeline import ModuleRun, Options, generate_tests
from verticals_testgen.sandbox import Limits, protections
from verticals_testgen.target import from_source

TARGET = "def double(x):\n    return 2 * x\n"
SECRET_NAME = "VERTICALS_TESTGEN_FAKE_SECRET"
SECRET_VALUE = "s3cr3t-" + uuid.uuid4().hex


def _candidate(name: str, body: str) -> Candidate:
    return Candidate(id=name, strategy="test", name=f"test_{name}", preamble=["import os", "import escape_target"],
                     body=f"def test_{name}():\n" + textwrap.indent(textwrap.dedent(body).strip(), "    "))


@pytest.fixture(scope="module")
def screened(tmp_path_factory):
    """Screen every escape attempt once (one sandbox session) and return name -> candidate."""
    outside = tmp_path_factory.mktemp("outside")
    victim = outside / "victim.txt"
    victim.write_text("keep me")
    os.environ[SECRET_NAME] = SECRET_VALUE
    attempts = {
        "control_passes": "assert escape_target.double(2) == 4",
        "network_socket": """
            import socket
            socket.create_connection(("1.1.1.1", 53), timeout=2)
        """,
        "network_raw_socket": """
            import _socket
            s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(("1.1.1.1", 53))
        """,
        "network_dns": """
            import socket
            socket.getaddrinfo("example.com", 80)
        """,
        "write_outside_open": f"open({str(outside / 'new.txt')!r}, 'w').write('x')",
        "write_outside_os_open": f"os.open({str(outside / 'new2.txt')!r}, os.O_WRONLY | os.O_CREAT)",
        "delete_outside": f"os.remove({str(victim)!r})",
        "rename_outside": f"os.rename({str(victim)!r}, {str(outside / 'moved.txt')!r})",
        "rmtree_outside": f"import shutil\nshutil.rmtree({str(outside)!r})",
        "fork_bomb": """
            while True:
                os.fork()
        """,
        "subprocess_spawn": """
            import subprocess
            subprocess.run(["sh", "-c", ":(){ :|:& };:"], timeout=5)
        """,
        "infinite_loop": """
            while True:
                pass
        """,
        "infinite_loop_catching_alarm": """
            while True:
                try:
                    while True:
                        pass
                except BaseException:
                    pass
        """,
        "memory_bomb_at_once": "blob = bytearray(64 * 2**30)",
        "memory_bomb_growing": """
            hoard = []
            while True:
                hoard.append(bytearray(16 * 2**20))
        """,
        "env_secret": f"assert os.environ.get({SECRET_NAME!r}) == {SECRET_VALUE!r}",
        "env_secret_via_proc": f"""
            found = False
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        found = found or {SECRET_VALUE!r}.encode() in open(f"/proc/{{pid}}/environ", "rb").read()
                    except OSError:
                        pass
            assert found
        """,
        "kill_parent": "import signal\nos.kill(os.getppid(), signal.SIGTERM)",
        "control_still_passes": "assert escape_target.double(3) == 6",
    }
    target = from_source(TARGET, "escape_target")
    options = Options(strategies=(), test_timeout=1.0, limits=Limits(memory_mb=768, cpu_seconds=6, wall_seconds=40))
    run = ModuleRun(target, options)
    try:
        candidates = [_candidate(name, body) for name, body in attempts.items()]
        # straight into the jail: the allow-list (tests/test_allowlist.py) would refuse these before they run,
        # and the jail must hold even for code that got past it
        results = run.run_tests({f"{c.name}.py": c.source for c in candidates})
        outcomes = {c.name.removeprefix("test_"): results.get(f"{c.name}.py", {"outcome": "error", "message": ""})
                    for c in candidates}
        yield outcomes, outside, victim, candidates
    finally:
        run.close()
        os.environ.pop(SECRET_NAME, None)


def test_controls_pass(screened):
    by_name, _, _, _ = screened
    assert by_name["control_passes"]["outcome"] == "passed"
    assert by_name["control_still_passes"]["outcome"] == "passed"


def test_escape_attempts_never_reach_a_kept_file(screened):
    _, _, _, candidates = screened
    from verticals_testgen.allowlist import check_test_code

    for candidate in candidates:
        if not candidate.name.startswith("test_control"):
            assert check_test_code(candidate.source, "escape_target", TARGET), candidate.name


@pytest.mark.parametrize("name", [
    "network_socket", "network_raw_socket", "network_dns", "write_outside_open", "write_outside_os_open",
    "delete_outside", "rename_outside", "rmtree_outside", "fork_bomb", "subprocess_spawn", "infinite_loop",
    "infinite_loop_catching_alarm", "memory_bomb_at_once", "memory_bomb_growing", "env_secret",
    "env_secret_via_proc", "kill_parent",
])
def test_escape_is_contained_and_reported_failed(screened, name):
    by_name, _, _, _ = screened
    result = by_name[name]
    assert result["outcome"] in {"failed", "error", "killed"}, (name, result)


def test_nothing_escaped(screened):
    _, outside, victim, _ = screened
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]


def test_layers_reported_are_the_verified_jail():
    layers = protections()
    for layer in ("unprivileged_user", "user_namespace", "pid_namespace", "net_namespace", "no_capabilities",
                  "seccomp", "read_only_root", "host_hidden"):
        assert layers[layer] is True, layer
    assert layers["host_uid"] != 0


# A target module that attacks at import time, as a tenant's `source` item would: it starts a shell through
# _posixsubprocess.fork_exec (no audit event, so the in-process guard never sees it), tries to remount, to
# write to the host, to read a world-readable database and /etc/shadow, and exposes what it read through
# functions, so that the observed strategy would copy it into the generated tests returned to the tenant.
ATTACK_TARGET = '''
import _posixsubprocess, os, sys

def _shell(script):
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    args = [b"/bin/sh", b"-c", script.encode()]
    pid = None
    for extra in ((False,), ()):  # allow_vfork: 3.11.4+ and 3.12+ take it, older 3.11 do not
        try:
            pid = _posixsubprocess.fork_exec(args, [b"/bin/sh"], True, (), None, None, -1, -1, -1, out_write, -1,
                                             out_write, err_read, err_write, True, False, -1, None, None, None, -1,
                                             None, *extra)
            break
        except TypeError:
            continue
    if pid is None:
        return "fork_exec failed"
    os.close(out_write)
    os.close(err_write)
    os.waitpid(pid, 0)
    chunks = []
    while True:
        chunk = os.read(out_read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")

SHELL = _shell("""
mount -o remount,bind,rw / && echo REMOUNTED
echo pwned > MARKER && echo WROTE_HOST
cat DATABASE
cat /etc/shadow
echo '|/tmp/x' > /proc/sys/kernel/core_pattern && echo WROTE_CORE_PATTERN
echo shell-ran
""")

def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError as error:
        return "blocked " + type(error).__name__

LOOT = _read("DATABASE") + _read("/etc/shadow")

def loot():
    return LOOT

def shell_output():
    return SHELL
'''


@pytest.fixture(scope="module")
def host_secrets():
    base = Path(tempfile.mkdtemp(prefix="vtg-host-"))
    base.chmod(0o777)
    token = "tenant-a-" + uuid.uuid4().hex
    (base / "api.db").write_text(f"SQLite format 3 ... job input of tenant A: {token}\n")
    (base / "api.db").chmod(0o644)
    yield base, token
    shutil.rmtree(base, ignore_errors=True)


def test_attacking_target_module_leaks_nothing_into_generated_tests(host_secrets):
    base, token = host_secrets
    marker = base / "marker"
    source = ATTACK_TARGET.replace("MARKER", str(marker)).replace("DATABASE", str(base / "api.db"))
    target = from_source(source, "tenant_b_module")
    options = Options(strategies=("observed",), explore_seconds=5, test_timeout=3)
    result = generate_tests([target], options)[0]
    text = json.dumps(result)
    assert result["kept"] >= 1, result.get("notes")  # the module imported and its functions were observed
    assert "shell-ran" in text  # the shell really started (inside the jail) and its output was observed
    assert token not in text
    assert not marker.exists()
    for success in ("REMOUNTED", "WROTE_HOST", "WROTE_CORE_PATTERN", "root:"):
        assert success not in text, success
    assert result["sandbox"]["unprivileged_user"] is True
