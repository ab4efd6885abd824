"""Locate the module under test without executing it (its code only ever runs in the sandbox)."""

from __future__ import annotations

import importlib.util
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class TargetError(ValueError):
    """The module cannot be located or is not pure Python."""


@dataclass
class Target:
    name: str  # import name used by the tests
    file: str  # absolute path of the .py file measured
    sys_path: list[str]  # folders to put first on sys.path in the sandbox
    source: str
    workdir: str | None = None  # temporary folder holding a module given as source text

    @property
    def test_file_name(self) -> str:
        return f"test_{self.name.replace('.', '_')}.py"


def _find_module_file(name: str) -> Path:
    """Find ``a.b.c`` by walking package folders; only the top-level spec is asked for (nothing is imported)."""
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError) as error:
        raise TargetError(f"cannot locate module {parts[0]!r}: {type(error).__name__}") from None
    if spec is None:
        raise TargetError(f"no module named {parts[0]!r} is importable here: give a file path instead")
    if len(parts) == 1:
        if spec.submodule_search_locations:
            origin = Path(next(iter(spec.submodule_search_locations))) / "__init__.py"
        elif spec.origin and spec.origin.endswith(".py"):
            origin = Path(spec.origin)
        else:
            raise TargetError(f"module {name!r} is not pure Python (built-in or compiled): nothing to measure")
        return origin
    if not spec.submodule_search_locations:
        raise TargetError(f"{parts[0]!r} is not a package, so {name!r} does not exist")
    folders = [Path(p) for p in spec.submodule_search_locations]
    for part in parts[1:-1]:
        folders = [f / part for f in folders if (f / part / "__init__.py").exists()]
    for folder in folders:
        for candidate in (folder / f"{parts[-1]}.py", folder / parts[-1] / "__init__.py"):
            if candidate.exists():
                return candidate
    raise TargetError(f"module {name!r} not found (only pure-Python .py modules are supported)")


def _root_for(file: Path, name: str) -> str:
    root = file.parent
    depth = name.count(".") + (1 if file.name == "__init__.py" else 0)
    for _ in range(depth):
        root = root.parent
    return str(root)


def from_module_name(name: str) -> Target:
    if not MODULE_NAME.match(name):
        raise TargetError("not a valid module name")
    file = _find_module_file(name).resolve()
    return Target(name, str(file), [_root_for(file, name)], file.read_text(encoding="utf-8"))


def from_path(path: str) -> Target:
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise TargetError(f"no such file: {path}")
    if file.suffix != ".py":
        raise TargetError("only .py files can be tested")
    parts = [file.stem] if file.name != "__init__.py" else []
    folder = file.parent
    while (folder / "__init__.py").exists():  # inside a package: import it by its dotted name
        parts.insert(0, folder.name)
        folder = folder.parent
    name = ".".join(parts)
    if not MODULE_NAME.match(name):
        raise TargetError(f"{file.name} does not have an importable module name")
    return Target(name, str(file), [str(folder)], file.read_text(encoding="utf-8"))


def from_source(source: str, name: str) -> Target:
    if not MODULE_NAME.match(name) or "." in name:
        raise TargetError("source text needs a plain module name (letters, digits, _)")
    workdir = tempfile.mkdtemp(prefix="vtg-src-")
    Path(workdir).chmod(0o755)
    file = Path(workdir) / f"{name}.py"
    file.write_text(source, encoding="utf-8")
    file.chmod(0o644)
    return Target(name, str(file), [workdir], source, workdir=workdir)


def resolve(module: str | None = None, path: str | None = None, source: str | None = None) -> Target:
    if source is not None:
        if not module:
            raise TargetError("source text needs a module name (field 'module')")
        return from_source(source, module)
    if path:
        return from_path(path)
    if module:
        if module.endswith(".py") or "/" in module:
            return from_path(module)
        return from_module_name(module)
    raise TargetError("give a module name, a file path, or source text with a module name")
