"""Offline means offline: a first de-identification run opens no network connection."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import socket, sys
    attempts = []
    def refuse(*args, **kwargs):
        attempts.append(args[:1])
        raise OSError("network disabled by the test")
    socket.create_connection = refuse
    socket.socket.connect = lambda self, *a, **k: refuse(*a)
    socket.getaddrinfo = refuse
    from verticals_medical.phi import detect
    spans = detect("Mail j.doe@example.co.uk or see https://example.org/x; seen by Dr. Okafor on 3/4/2020.")
    kinds = sorted({s.category for s in spans})
    print("CATEGORIES", kinds)
    print("ATTEMPTS", len(attempts))
""")


@pytest.mark.slow
def test_first_run_offline_makes_no_network_attempt(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TLDEXTRACT_CACHE": str(tmp_path / "tld-cache"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ATTEMPTS 0" in done.stdout, done.stdout + done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "public_suffix_list" not in done.stderr, done.stderr[-3000:]
    assert "EMAIL" in done.stdout and "URL" in done.stdout
