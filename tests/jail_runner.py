"""Run one payload in a verticals jail and print the outcome as JSON (used by tests/test_jail_attacks.py).

It loads ``verticals/jail.py`` by path (not the ``verticals`` package), so it runs under any Python 3.11 —
the "ordinary user" case runs it with the system interpreter as an unprivileged uid, which cannot read a
root-owned virtualenv. It is the host side of an attack: it holds what the jail returns the way the product
does (``Jail.run``, then ``read_output`` for files the run left) and reports its own peak memory.

Usage: ``python jail_runner.py SPEC_JSON``; SPEC has ``jail_module``, ``sys_path`` (where pyseccomp is),
``work``, ``payload``, ``limits`` and optional ``env``, ``read`` (file names in ``work`` to read after the run,
with ``read_max``), ``cancel_after`` (seconds after which the run is cancelled) and ``host_memory_mb`` (an
address-space limit for this runner, so that an attack that works cannot take the test machine with it).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import resource
import sys
import time
from pathlib import Path

KEEP = 64 * 1024  # the stdout/stderr tail printed back to the test


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("host_memory_mb"):
        limit = int(spec["host_memory_mb"]) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    sys.path[:0] = spec.get("sys_path", [])
    module_spec = importlib.util.spec_from_file_location("verticals_jail_under_test", spec["jail_module"])
    jail_module = importlib.util.module_from_spec(module_spec)
    sys.modules["verticals_jail_under_test"] = jail_module
    module_spec.loader.exec_module(jail_module)
    try:
        layers = jail_module.verify()
    except jail_module.JailUnavailable as error:
        print(json.dumps({"unavailable": str(error)}))
        return
    work = Path(spec["work"])
    jail = jail_module.Jail(work, limits=jail_module.JailLimits(**spec.get("limits", {})))
    options = {}
    # a jail module without a cancel (before issue 22) is run the way its callers had to: to the wall clock
    if spec.get("cancel_after") is not None and "cancelled" in inspect.signature(jail.run).parameters:
        cancel_at = time.monotonic() + float(spec["cancel_after"])
        options["cancelled"] = lambda: time.monotonic() >= cancel_at
    waited = time.monotonic()
    result = jail.run([sys.executable, "-I", spec["payload"]], env=spec.get("env"), **options)
    waited = time.monotonic() - waited
    files = {}
    for name in spec.get("read", []):
        started = time.monotonic()
        try:
            if hasattr(jail_module, "read_output"):
                found = jail_module.read_output(work / name, within=work, max_bytes=spec.get("read_max", 2**20),
                                                timeout=5.0)
                data, size, truncated = found.data, found.size, found.truncated
            else:  # before issue 22 the host read such files as any file (testgen: Path.read_text)
                data = (work / name).read_bytes()
                size, truncated = len(data), False
            files[name] = {"size": size, "read": len(data), "truncated": truncated,
                           "head": data[:200].decode("utf-8", "replace")}
        except OSError as error:
            files[name] = {"refused": type(error).__name__, "errno": error.errno}
        files[name]["seconds"] = time.monotonic() - started
    print(json.dumps({"returncode": result.returncode, "killed": result.killed, "seconds": result.seconds,
                      "waited": waited, "stdout": result.stdout[-KEEP:].decode("utf-8", "replace"),
                      "stdout_bytes": len(result.stdout), "stderr": result.stderr.decode("utf-8", "replace")[-3000:],
                      "stdout_dropped": getattr(result, "stdout_dropped", None),
                      "peak_memory": getattr(result, "peak_memory", None),
                      "cpu_throttled": getattr(result, "cpu_throttled", None),
                      "run_layers": result.layers, "layers": layers, "files": files,
                      "runner_max_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's own peak resident set (VmHWM). Not ru_maxrss: Linux carries the pre-exec image's peak into
    it, so a runner forked from a pytest holding models reported that pytest's size (850 MB) as its own."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


if __name__ == "__main__":
    main()
