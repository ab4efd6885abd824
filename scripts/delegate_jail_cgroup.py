#!/usr/bin/env python3
"""Per-run cgroups of the code jail (verticals.jail.RunCgroup; docs/security.md, "Limits per run").

As root, jailed runs get their cgroups with no setup: this checks that they can (``--check``, what
``make setup`` runs). An ordinary user's worker needs a cgroup an operator delegates to it; as root:

    scripts/delegate_jail_cgroup.py --user alice --memory-mb 8192     # make it (prints the settings)
    scripts/delegate_jail_cgroup.py --user alice --remove             # remove it

It makes ``verticals-<user>`` (cgroup v2: one folder; v1: one in the memory, the pids and the cpu hierarchy)
below root's own cgroups, caps the memory of everything below it at ``--memory-mb`` (the ceiling for all of
that user's runs together; each run is capped at its own ``memory_mb`` below it), gives the folder to the user
and adds a ``worker`` leaf to start the worker in (cgroup v2 lets a process move only within a subtree its uid
owns). It prints ``VERTICALS_JAIL_CGROUP=...`` for the worker's environment and ``WORKER_LEAVES=...``: the
``cgroup.procs`` files to write the worker's pid to (as root) before it starts. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys
from pathlib import Path


def mounts() -> tuple[Path | None, dict[str, Path]]:
    unified, v1 = None, {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if " - " not in line:
            continue
        before, after = line.split(" - ", 1)
        fields, rest = before.split(), after.split()
        if rest[0] == "cgroup2" and unified is None:
            unified = Path(fields[4])
        elif rest[0] == "cgroup":
            for option in rest[2].split(","):
                if option in ("memory", "pids", "cpu"):
                    v1.setdefault(option, Path(fields[4]))
    return unified, v1


def own() -> dict[str, str]:
    found = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            found[controller] = path
    return found


def parents() -> list[Path]:
    """Where the delegated folders go: below this process's own cgroups (v1), or at the v2 top."""
    unified, v1 = mounts()
    mine = own()
    if "memory" in v1:
        return [v1[c] / mine[c].lstrip("/") for c in ("memory", "pids", "cpu") if c in v1 and c in mine]
    if unified is not None and "memory" in (unified / "cgroup.controllers").read_text().split():
        control = unified / "cgroup.subtree_control"
        if not {"memory", "pids"} <= set(control.read_text().split()):
            control.write_text("+memory +pids")
        if "cpu" in (unified / "cgroup.controllers").read_text().split():  # runs' CPU shares (cpu.max)
            control.write_text("+cpu")
        return [unified]
    raise SystemExit("error: no cgroup hierarchy with the memory controller here; the jail's limits stay per "
                     "process (docs/security.md)")


def delegate(user: str, memory_mb: int) -> None:
    entry = pwd.getpwnam(user) if not user.isdigit() else None
    uid = entry.pw_uid if entry else int(user)
    gid = entry.pw_gid if entry else int(user)
    folders = []
    for parent in parents():
        folder = parent / f"verticals-{user}"
        folder.mkdir(exist_ok=True)
        if (folder / "cgroup.controllers").exists():  # v2
            (folder / "cgroup.subtree_control").write_text("+memory +pids")
            if "cpu" in (folder / "cgroup.controllers").read_text().split():
                (folder / "cgroup.subtree_control").write_text("+cpu")
            (folder / "memory.max").write_text(str(memory_mb * 2**20))
        elif (folder / "memory.limit_in_bytes").exists():
            (folder / "memory.limit_in_bytes").write_text(str(memory_mb * 2**20))
        (folder / "worker").mkdir(exist_ok=True)
        for path in [folder, folder / "worker", *folder.glob("cgroup.*"), *folder.glob("tasks"),
                     folder / "worker" / "cgroup.procs", *(folder / "worker").glob("tasks")]:
            if path.exists():
                os.chown(path, uid, gid)
        folders.append(folder)
    print("VERTICALS_JAIL_CGROUP=" + ":".join(str(f) for f in folders))
    print("WORKER_LEAVES=" + ":".join(str(f / "worker" / "cgroup.procs") for f in folders))


def remove(user: str) -> None:
    for parent in parents():
        folder = parent / f"verticals-{user}"
        if not folder.is_dir():
            continue
        for child in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            child.rmdir()
        folder.rmdir()
        print(f"removed {folder}")


def check() -> int:
    """Whether this uid's jailed runs get a cgroup (loads verticals/jail.py by path: no package needed)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "verticals" / "jail.py"
    spec = importlib.util.spec_from_file_location("verticals_jail_check", path)
    jail = importlib.util.module_from_spec(spec)
    sys.modules["verticals_jail_check"] = jail
    spec.loader.exec_module(jail)
    cgroup, description = jail.RunCgroup.create(jail.JailLimits(memory_mb=256, processes=16))
    if cgroup is None:
        print(f"jail: no per-run cgroup for this uid ({description}); memory and processes are limited per "
              "process only. See docs/security.md, 'Limits per run'.", file=sys.stderr)
        return 1
    cgroup.remove()
    print(f"jail: per-run cgroups work here ({description})", file=sys.stderr)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether this uid's runs get a cgroup")
    parser.add_argument("--user", help="user name or uid to delegate a cgroup to")
    parser.add_argument("--memory-mb", type=int, default=8192, help="memory ceiling of all the user's runs")
    parser.add_argument("--remove", action="store_true", help="remove the user's delegated cgroup")
    args = parser.parse_args()
    if args.check or not args.user:
        raise SystemExit(check())
    if os.geteuid() != 0:
        raise SystemExit("error: delegating a cgroup needs root")
    if args.remove:
        remove(args.user)
    else:
        delegate(args.user, args.memory_mb)


if __name__ == "__main__":
    main()
