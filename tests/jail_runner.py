"""Run one payload in a verticals jail and print the outcome as JSON (used by tests/test_jail_attacks.py).

It loads ``verticals/jail.py`` by path (not the ``verticals`` package), so it runs under any Python 3.11 —
the "ordinary user" case runs it with the system interpreter as an unprivileged uid, which cannot read a
root-owned virtualenv. Usage: ``python jail_runner.py SPEC_JSON``; SPEC has ``jail_module``, ``sys_path``
(where pyseccomp is), ``work``, ``payload``, ``limits`` and optional ``env``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path


def main() -> None:
    spec = json.loads(sys.argv[1])
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
    jail = jail_module.Jail(Path(spec["work"]), limits=jail_module.JailLimits(**spec.get("limits", {})))
    result = jail.run([sys.executable, "-I", spec["payload"]], env=spec.get("env"))
    print(json.dumps({"returncode": result.returncode, "killed": result.killed, "seconds": result.seconds,
                      "stdout": result.stdout.decode("utf-8", "replace"),
                      "stderr": result.stderr.decode("utf-8", "replace")[-3000:], "layers": layers}))


if __name__ == "__main__":
    main()
