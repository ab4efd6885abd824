"""Parameters that name things on the server: one mechanism, enforced by the core.

A parameter (or input field) that names something on the server -- a file, a folder, a model, an importable
module -- is typed with one of the types below, never as a plain ``str``/``Path``. The core passes a
:class:`ServerAccess` as the validation context of every ``Params`` and ``Input`` it validates (a job's
tenant decides it: ``verticals.core.access``), and these types enforce it: an API tenant names only regular
files inside the folders an operator allowed (``VERTICALS_DATA_ROOTS``), an operator (the CLI) names any
regular file, and everyone reads through the handle (size cap, no devices, no FIFOs, no symlink swaps). A
test walks every installed task's schemas and fails on a path-like field of another type
(``tests/test_security_server_files.py``); docs/security.md explains the rule.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
)

__all__ = [
    "NO_ACCESS",
    "OPERATOR",
    "SERVER_ACCESS",
    "SERVER_FORMATS",
    "OperatorOnly",
    "OperatorPath",
    "ServerAccess",
    "ServerFile",
    "ServerFileHandle",
    "ServerFolder",
    "ServerFolderHandle",
    "ServerModel",
    "ServerPathError",
    "check_server_fields",
    "server_fields",
]

SERVER_ACCESS = "verticals.server_access"
"""The key of the :class:`ServerAccess` in the pydantic validation context (``context={SERVER_ACCESS: ...}``)."""

MiB = 1 << 20


class ServerPathError(ValueError):
    """A server path that may not be used, or cannot be read. For a tenant the message is the same whatever
    the reason (missing, outside the allowed folders, not a regular file, a symlink out): no existence oracle,
    and never any of the file's content."""


@dataclass(frozen=True)
class ServerAccess:
    """Who names a server path and what they may reach; the core builds it per job (``verticals.core.access``).

    ``operator``: the CLI or an in-process SDK on the server (any regular file, any folder, hub ids);
    otherwise an API tenant: only inside ``roots`` (real paths), and nothing at all when there is none.
    Everyone is held to regular files and the size caps. Without a context a validation gets
    :data:`NO_ACCESS` (a tenant with no root): forgetting the context refuses, it never opens.
    """

    operator: bool = False
    roots: tuple[str, ...] = ()
    max_file_bytes: int = 16 * MiB
    max_folder_bytes: int = 4096 * MiB
    max_folder_files: int = 10_000

    def context(self) -> dict[str, Any]:
        """The pydantic validation context: ``Model.model_validate(data, context=access.context())``."""
        return {SERVER_ACCESS: self}

    @staticmethod
    def of(context: Any) -> ServerAccess:
        found = context.get(SERVER_ACCESS) if isinstance(context, Mapping) else None
        return found if isinstance(found, ServerAccess) else NO_ACCESS

    def refusal(self) -> ServerPathError:
        """The one message a tenant gets, whatever is wrong with the path it named."""
        if not self.roots:
            return ServerPathError("files on the server cannot be named through the API: send the content "
                                   "instead, or ask an operator to allow a data folder (VERTICALS_DATA_ROOTS)")
        return ServerPathError("not an allowed file on the server: name a regular file inside a data folder "
                               "the operator allowed (VERTICALS_DATA_ROOTS)")


NO_ACCESS = ServerAccess()
OPERATOR = ServerAccess(operator=True)
"""An operator with the default caps (tests, and plugins' own tools run on the server)."""

_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _within(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _candidates(value: str, access: ServerAccess) -> list[tuple[str, str]]:
    """(real path, root it is under) for a named path; raises the refusal when none is allowed."""
    if not isinstance(value, str) or not value or "\x00" in value or len(value) > 4096:
        raise access.refusal() if not access.operator else ServerPathError("not a path")
    if access.operator:
        real = os.path.realpath(os.path.expanduser(value))
        return [(real, os.sep)]
    if not access.roots:
        raise access.refusal()
    named = [value] if os.path.isabs(value) else [os.path.join(root, value) for root in access.roots]
    found = []
    for path in named:
        real = os.path.realpath(path)
        found += [(real, root) for root in access.roots if _within(real, root)][:1]
    if not found:
        raise access.refusal()
    return found


class _NotRegular(OSError):
    """The named path is there but is not what was asked for (a device, FIFO, socket, symlink, or a folder
    where a file was asked)."""


def _open_beneath(root: str, real: str, directory: bool) -> int:
    """Open ``real`` (a real path under ``root``) one component at a time with ``O_NOFOLLOW``: a component
    swapped for a symlink after ``realpath`` fails instead of leading out. The last component is checked
    with ``lstat`` before it is opened (a device or FIFO is never opened) and with ``fstat`` after."""
    relative = os.path.relpath(real, root)
    parts = [] if relative == os.curdir else relative.split(os.sep)
    fd = os.open(root, _DIR_FLAGS)
    try:
        for index, part in enumerate(parts):
            if part in ("", os.curdir, os.pardir):
                raise FileNotFoundError(errno.ENOENT, "not found")
            last = index == len(parts) - 1
            if last and not directory:
                if not stat.S_ISREG(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise _NotRegular(errno.EINVAL, "not a regular file")
                flags = _FILE_FLAGS
            else:
                flags = _DIR_FLAGS
            try:
                child = os.open(part, flags, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR) and last:
                    raise _NotRegular(errno.EINVAL, "not what was asked") from None
                raise
            os.close(fd)
            fd = child
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISDIR(mode) if directory else stat.S_ISREG(mode)):
            raise _NotRegular(errno.EINVAL, "not what was asked")
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_named(value: str, access: ServerAccess, directory: bool, what: str) -> tuple[int, str, str]:
    """(open fd, real path, root) of the first allowed candidate; a tenant gets one refusal for every failure,
    an operator a message that says what is wrong (never what the file holds)."""
    problem: OSError | None = None
    for real, root in _candidates(value, access):
        try:
            return _open_beneath(root, real, directory), real, root
        except OSError as error:
            problem = error
    if not access.operator:
        raise access.refusal()
    kind = "a folder" if directory else "a regular file"
    if isinstance(problem, _NotRegular):
        raise ServerPathError(f"{what} {value!r} is not {kind} (devices, FIFOs and sockets are never read)")
    if isinstance(problem, FileNotFoundError | NotADirectoryError):
        raise ServerPathError(f"{what} {value!r} does not exist")
    if isinstance(problem, PermissionError):
        raise ServerPathError(f"{what} {value!r}: permission denied")
    raise ServerPathError(f"{what} {value!r} cannot be opened ({getattr(problem, 'strerror', None) or problem})")


def _bounded_gunzip(data: bytes, cap: int, what: str) -> bytes:
    """``data`` unpacked when it is gzip (every member), at most ``cap`` bytes of it; as it is otherwise."""
    import zlib

    if data[:2] != b"\x1f\x8b":
        return data
    out, rest = bytearray(), data
    while rest[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(rest, cap + 1 - len(out))
        except zlib.error:
            raise ServerPathError(f"{what} is not a valid gzip file") from None
        if len(out) > cap or inflater.unconsumed_tail:
            raise ServerPathError(f"{what} unpacks to more than {cap // MiB} MiB (VERTICALS_DATA_MAX_FILE_MB)")
        rest = inflater.unused_data
    return bytes(out)


@dataclass(frozen=True)
class ServerFileHandle:
    """A validated server file: what a task receives for a :data:`ServerFile` parameter.

    Not a path (``open(handle)`` fails on purpose): read it with :meth:`read_bytes` / :meth:`read_text` /
    :meth:`read_json`, which open it again the same safe way (real path inside the allowed root, no
    symlink, a regular file) and read at most the size cap. Hashable and equal while the file is unchanged
    (``version``), so ``functools.lru_cache`` on a handle caches per file version.
    """

    path: str
    root: str = field(repr=False)
    access: ServerAccess = field(repr=False, compare=False)
    version: tuple[int, int, int] = (0, 0, 0)  # (inode, size, mtime_ns) when it was validated

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.path)[1].lower()

    def __str__(self) -> str:
        return self.path

    def _label(self) -> str:
        return repr(self.path) if self.access.operator else "the file"

    def read_bytes(self, decompress: bool = False) -> bytes:
        """The file's bytes (at most ``max_file_bytes``; more is a :class:`ServerPathError`). ``decompress``:
        gzip content is unpacked, with the same cap on the unpacked size."""
        cap = self.access.max_file_bytes
        try:
            fd = _open_beneath(self.root, self.path, directory=False)
        except OSError:
            raise (ServerPathError(f"{self._label()} is no longer a readable regular file")
                   if self.access.operator else self.access.refusal()) from None
        with os.fdopen(fd, "rb") as handle:
            too_big = os.fstat(fd).st_size > cap
            data = b"" if too_big else handle.read(cap + 1)  # +1: a file that grew since is caught too
        if too_big or len(data) > cap:
            raise ServerPathError(f"{self._label()} is larger than the server's limit of {cap // MiB} MiB "
                                  "(VERTICALS_DATA_MAX_FILE_MB)")
        return _bounded_gunzip(data, cap, self._label()) if decompress else data

    def read_text(self, encoding: str = "utf-8", decompress: bool = False) -> str:
        """The file as text; a decoding error names the file, never its content."""
        try:
            return self.read_bytes(decompress).decode(encoding)
        except UnicodeDecodeError:
            raise ServerPathError(f"{self._label()} is not {encoding} text") from None

    def read_json(self, decompress: bool = False) -> Any:
        """The file parsed as JSON; a syntax error names the line, never the content."""
        import json

        try:
            return json.loads(self.read_text(decompress=decompress))
        except json.JSONDecodeError as error:
            raise ServerPathError(f"{self._label()} is not valid JSON (line {error.lineno})") from None
        except RecursionError:
            raise ServerPathError(f"{self._label()} is JSON nested too deeply") from None

    @classmethod
    def validate(cls, value: Any, access: ServerAccess, what: str = "file") -> ServerFileHandle:
        if isinstance(value, ServerFileHandle):
            value = value.path
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        fd, real, root = _open_named(value, access, directory=False, what=what)
        try:
            info = os.fstat(fd)
        finally:
            os.close(fd)
        if info.st_size > access.max_file_bytes:
            raise ServerPathError(f"{what} {value!r} is larger than the server's limit of "
                                  f"{access.max_file_bytes // MiB} MiB (VERTICALS_DATA_MAX_FILE_MB)"
                                  if access.operator else
                                  f"the {what} is larger than the server's limit of "
                                  f"{access.max_file_bytes // MiB} MiB (VERTICALS_DATA_MAX_FILE_MB)")
        return cls(real, root, access, (info.st_ino, info.st_size, info.st_mtime_ns))


@dataclass(frozen=True)
class ServerFolderHandle:
    """A validated server folder (e.g. a model's weights): ``path`` is its real path, for a loader that reads
    a folder. Every entry below it was checked when it was validated: regular files and folders only
    (symlinks only to regular files inside the allowed root), at most ``max_folder_files`` entries and
    ``max_folder_bytes`` in all. The loader reads it afterwards by path: keep the allowed folders writable
    by operators only. ``hub_id``: instead of a folder, an operator named a model hub id (never a tenant)."""

    path: str | None
    access: ServerAccess = field(repr=False, compare=False)
    hub_id: str | None = None
    version: tuple[int, int, int] = (0, 0, 0)

    def __str__(self) -> str:
        return self.path or self.hub_id or ""

    @classmethod
    def validate(cls, value: Any, access: ServerAccess, what: str = "folder",
                 hub_ids: bool = False) -> ServerFolderHandle:
        if isinstance(value, ServerFolderHandle):
            value = value.path or value.hub_id
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if (hub_ids and access.operator and isinstance(value, str) and _HUB_ID.fullmatch(value)
                and not os.path.lexists(os.path.expanduser(value))):
            return cls(None, access, hub_id=value)
        fd, real, root = _open_named(value, access, directory=True, what=what)
        try:
            files, size = _check_tree(fd, real, access, root)
            mtime = os.fstat(fd).st_mtime_ns
        except ServerPathError as error:
            raise (error if access.operator else access.refusal()) from None
        finally:
            os.close(fd)
        return cls(real, access, version=(files, size, mtime))


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")


def _check_tree(fd: int, real: str, access: ServerAccess, root: str) -> tuple[int, int]:
    """Walk an open folder without following symlinks: regular files and folders only, symlinks only to
    regular files within ``root`` (a model cache's snapshot links), within the count and size caps."""
    files = size = 0
    for top, _dirs, names, top_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
        for name in [*names, *_dirs]:
            info = os.stat(name, dir_fd=top_fd, follow_symlinks=False)
            where = os.path.normpath(os.path.join(real, top, name))
            if stat.S_ISLNK(info.st_mode):
                target = os.path.realpath(where)
                if not _within(target, root):
                    raise ServerPathError(f"{where!r} links outside the allowed folder")
                info = os.stat(target)
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise ServerPathError(f"{where!r} is not a regular file (devices, FIFOs and sockets are refused)")
            files += 1
            size += info.st_size
            if files > access.max_folder_files or size > access.max_folder_bytes:
                raise ServerPathError(f"the folder holds more than {access.max_folder_files} files or "
                                      f"{access.max_folder_bytes // MiB} MiB (VERTICALS_DATA_MAX_FOLDER_MB)")
    return files, size


def _field_label(info: ValidationInfo) -> str:
    return "file" if info.field_name is None else info.field_name


def _file_from(value: Any, info: ValidationInfo) -> ServerFileHandle:
    return ServerFileHandle.validate(value, ServerAccess.of(info.context), _field_label(info))


def _folder_from(value: Any, info: ValidationInfo) -> ServerFolderHandle:
    return ServerFolderHandle.validate(value, ServerAccess.of(info.context), _field_label(info))


def _model_from(value: Any, info: ValidationInfo) -> ServerFolderHandle:
    return ServerFolderHandle.validate(value, ServerAccess.of(info.context), _field_label(info), hub_ids=True)


_AS_TEXT = PlainSerializer(str, return_type=str)

ServerFile = Annotated[ServerFileHandle, PlainValidator(_file_from, json_schema_input_type=str), _AS_TEXT,
                       WithJsonSchema({"type": "string", "format": "server-file"})]
"""A parameter naming a regular file on the server; the task receives a :class:`ServerFileHandle`."""

ServerFolder = Annotated[ServerFolderHandle, PlainValidator(_folder_from, json_schema_input_type=str), _AS_TEXT,
                         WithJsonSchema({"type": "string", "format": "server-folder"})]
"""A parameter naming a folder on the server; the task receives a :class:`ServerFolderHandle`."""

ServerModel = Annotated[ServerFolderHandle, PlainValidator(_model_from, json_schema_input_type=str), _AS_TEXT,
                        WithJsonSchema({"type": "string", "format": "server-model"})]
"""A model's folder on the server, or (operators only) a model hub id: a :class:`ServerFolderHandle`."""


@dataclass(frozen=True)
class OperatorOnly:
    """Marks a ``str`` field that names something on the server a task resolves itself (a path it hands to
    the code jail, an importable module name): an operator may give it, an API tenant never (whatever the
    data roots). ``unless``: the field is only a name, not a server reference, when that sibling field is
    set (declare the sibling first: ``testgen``'s ``module`` with its ``source``).

    ``field: Annotated[str | None, OperatorOnly("module", unless="source")] = None``
    """

    kind: Literal["path", "module"] = "path"
    unless: str | None = None

    def check(self, value: Any, access: ServerAccess, siblings: Mapping[str, Any]) -> Any:
        if value in (None, "") or access.operator:
            return value
        if self.unless is not None and siblings.get(self.unless) not in (None, ""):
            return value
        what = "a module on the server" if self.kind == "module" else "a path on the server"
        extra = f" (send `{self.unless}` with it)" if self.unless else ""
        raise ServerPathError(f"only an operator (the CLI on the server) may name {what}; send the content "
                              f"instead{extra}")

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        def after(value: Any, info: ValidationInfo) -> Any:
            return self.check(value, ServerAccess.of(info.context), info.data if isinstance(info.data, dict) else {})

        return handler(Annotated[source, AfterValidator(after)])

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        found = dict(handler(schema))
        found["x-verticals-server"] = {"kind": self.kind, "operator_only": True, "unless": self.unless}
        return found


OperatorPath = Annotated[str, OperatorOnly("path")]
"""A path on the server only an operator may give (a tenant's value is refused at submit)."""

SERVER_FORMATS = ("server-file", "server-folder", "server-model")
"""The JSON-schema ``format`` of the server-path types (``x-verticals-server`` marks :class:`OperatorOnly`)."""


def server_fields(model: type[BaseModel]) -> dict[str, OperatorOnly | str]:
    """The fields of ``model`` that name server things: field name -> its :class:`OperatorOnly` marker, or
    the JSON-schema format of its server-path type."""
    found: dict[str, OperatorOnly | str] = {}
    for name, info in model.model_fields.items():
        marker: OperatorOnly | str | None = next((m for m in info.metadata if isinstance(m, OperatorOnly)), None)
        if marker is None:
            marker = _nested_marker(info.annotation)
        if marker is not None:
            found[name] = marker
    return found


def _nested_marker(annotation: Any) -> OperatorOnly | str | None:
    import typing

    if typing.get_origin(annotation) is Annotated:
        args = typing.get_args(annotation)
        for meta in args[1:]:
            if isinstance(meta, OperatorOnly):
                return meta
            if isinstance(meta, WithJsonSchema) and (meta.json_schema or {}).get("format") in SERVER_FORMATS:
                return str((meta.json_schema or {})["format"])
        return _nested_marker(args[0])
    for arg in typing.get_args(annotation):
        found = _nested_marker(arg)
        if found is not None:
            return found
    return None


def check_server_fields(model: type[BaseModel], row: Mapping[str, Any], access: ServerAccess) -> None:
    """Apply ``model``'s server-path rules to a raw row before anything reads it (a task's ``read_items``
    may expand a path itself): :class:`ServerPathError` for the first field a tenant may not give."""
    if access.operator:
        return
    for name, marker in server_fields(model).items():
        value = row.get(name)
        if value in (None, ""):
            continue
        try:
            if isinstance(marker, OperatorOnly):
                marker.check(value, access, row)
            elif marker == "server-file":
                ServerFileHandle.validate(value, access, name)
            else:
                ServerFolderHandle.validate(value, access, name, hub_ids=marker == "server-model")
        except ServerPathError as error:
            raise ServerPathError(f"{name}: {error}") from None
