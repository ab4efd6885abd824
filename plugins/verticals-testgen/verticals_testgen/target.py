"""Locate the module under test without executing it (its code only ever runs in the sandbox)."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from verticals.jail import private_dir

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
    # a private folder (0700: no other local user reads a tenant's code; removed when the job ends, or by the next
    # process if this one is killed); the jail is shown only src/ inside it, which its uid may read
    workdir = private_dir("src")
    folder = workdir / "src"
    folder.mkdir(mode=0o755)
    file = folder / f"{name}.py"
    file.write_text(source, encoding="utf-8")
    file.chmod(0o644)
    return Target(name, str(file), [str(folder)], source, workdir=str(workdir))


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


SKIP_FILES = {"setup.py", "conftest.py", "__main__.py", "noxfile.py", "_version.py", "version.py"}
SKIP_FOLDERS = {"tests", "test", "testing", "__pycache__", "docs", "examples", "build", "dist"}


def _worth_testing(file: Path) -> bool:
    """A file with at least one function or class (an ``__init__`` that only re-exports is not)."""
    import ast

    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return False
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for node in tree.body)


def package_modules(folder: Path, package: str | None = None) -> list[str] | None:
    """Dotted names of the modules worth testing below a package folder (one item each), without importing.

    ``folder`` is a package (it has ``__init__.py``) or a plain folder of modules; returns None when it holds
    no Python file. Test files, ``setup.py`` and test/doc folders are skipped.
    """
    folder = folder.resolve()
    if not folder.is_dir():
        return None
    names: list[str] = []
    for file in sorted(folder.rglob("*.py")):
        relative = file.relative_to(folder)
        if any(part in SKIP_FOLDERS or part.startswith(".") for part in relative.parts[:-1]):
            continue
        if file.name in SKIP_FILES or file.name.startswith("test_") or file.name.endswith("_test.py"):
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        # every folder between the package and the file must itself be a package
        if any(not (folder.joinpath(*relative.parts[:i]) / "__init__.py").exists()
               for i in range(1, len(relative.parts))):
            continue
        if not _worth_testing(file):
            continue
        dotted = ".".join(([package] if package else []) + parts)
        if dotted and MODULE_NAME.match(dotted):
            names.append(dotted)
    return names


def expand(module: str | None = None, path: str | None = None) -> list[dict[str, str]] | None:
    """One item per module when ``module``/``path`` names a package or a folder; None for a single module."""
    if path or (module and ("/" in module or module.endswith(".py"))):
        folder = Path(path or module or "").expanduser()
        if not folder.is_dir():
            return None
        folder = folder.resolve()
        if (folder / "__init__.py").exists():  # a package folder: from_path finds each file's dotted name
            names = package_modules(folder, folder.name) or []
            files = []
            for name in names:
                inner = folder.joinpath(*name.split(".")[1:])
                files.append(inner.with_suffix(".py") if inner.with_suffix(".py").exists() else inner / "__init__.py")
            return [{"path": str(file)} for file in files]
        return [{"path": str(file)} for file in sorted(folder.glob("*.py"))
                if file.name not in SKIP_FILES and not file.name.startswith("test_") and _worth_testing(file)]
    if module and MODULE_NAME.match(module) and "." not in module:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        names = []
        for location in spec.submodule_search_locations:
            names += package_modules(Path(location), module) or []
        return [{"module": name} for name in dict.fromkeys(names)]
    return None
