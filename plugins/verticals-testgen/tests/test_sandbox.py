"""Sandbox escape attempts in candidate tests must be contained and reported as failed candidates."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path

import pytest
from verticals_testgen.candidates import Candidate
from verticals_testgen.pipeline import ModuleRun, Options
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
        run.screen(candidates)
        yield {c.name.removeprefix("test_"): c for c in candidates}, outside, victim
    finally:
        run.close()
        os.environ.pop(SECRET_NAME, None)


def test_controls_pass(screened):
    by_name, _, _ = screened
    assert by_name["control_passes"].status == "passed"
    assert by_name["control_still_passes"].status == "passed"


@pytest.mark.parametrize("name", [
    "network_socket", "network_raw_socket", "network_dns", "write_outside_open", "write_outside_os_open",
    "delete_outside", "rename_outside", "rmtree_outside", "fork_bomb", "subprocess_spawn", "infinite_loop",
    "infinite_loop_catching_alarm", "memory_bomb_at_once", "memory_bomb_growing", "env_secret",
    "env_secret_via_proc", "kill_parent",
])
def test_escape_is_contained_and_reported_failed(screened, name):
    by_name, _, _ = screened
    candidate = by_name[name]
    assert candidate.status in {"failed", "error", "killed"}, (name, candidate.status, candidate.message)


def test_nothing_escaped(screened):
    _, outside, victim = screened
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]


def test_layers_reported():
    layers = protections()
    assert layers["audit_hook"] and layers["rlimits"] and layers["scrubbed_environment"]
    if Path("/proc/self/ns/net").exists() and os.environ.get("VERTICALS_TESTGEN_NO_NAMESPACES") is None:
        # document (not require) the OS layers: CI containers may forbid namespaces
        print("sandbox layers:", layers)
