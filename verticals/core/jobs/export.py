"""Exporting a job's results: CSV, JSONL, Parquet, or a folder (``results.jsonl``, ``Task.files``, ``summary.json``).

One implementation for every front end (``verticals run -o``, ``verticals jobs export``, the API, the SDK).

- Rows are streamed from the store in input order (constant memory, any job size).
- A row is ``seq``, ``status``, the item's ``input`` (unless left out: sensitive tasks leave it out by
  default), ``output``, ``explanation`` (jobs with the option ``explain`` only) and ``error``. Task fields
  copied from a mapped column (``--text-column headline``) are exported once, under the user's column name.
- CSV and Parquet are flat: nested objects become dotted columns (``probabilities.positive``), lists JSON
  text; an input column named like an output column is written as ``input.NAME`` (the result's columns keep
  their names whatever the input holds: :func:`verticals.core.io.input_column`). Columns come in schema
  order: ``seq``, the input columns, the output columns, ``status``, ``error``. The output columns (and
  their Parquet types) come from the task's ``Output`` schema; the input columns (an input keeps every
  column of its file) from what submission recorded (``jobs.input_columns``); only what the schema leaves
  open (a ``dict[str, X]`` field, ``Any``), and the inputs of a job that recorded none (stored before
  migration 0013), are gathered from the stored rows, in one read before the write. Every export of a task
  whose output schema is closed reads the job once.
"""

from __future__ import annotations

import csv
import io
import json
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel

from verticals.core.access import access_context
from verticals.core.io import InputError, flatten, input_column, is_folder_output, merge_kind, output_format, value_kind
from verticals.core.jobs.engine import JobError
from verticals.core.store import Store

if TYPE_CHECKING:
    from verticals.registry import Registry

FOLDER = "folder"
ZIP = "zip"  # a folder export as one archive (what the API sends for a folder export)
FORMATS = ("csv", "jsonl", "parquet", FOLDER, ZIP)
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson",
               "parquet": "application/vnd.apache.parquet", ZIP: "application/zip"}


class ExportError(JobError):
    """A job's results cannot be exported as asked (unknown format, a task file outside the folder...)."""


# -- rows -------------------------------------------------------------------------------------

def result_rows(store: Store, job_id: str, include_inputs: bool = True, copies: Iterable[str] = (),
                status: str | None = None, explained: bool = False) -> Iterator[dict[str, Any]]:
    """Export rows (seq, status, input, output, error; ``explanation`` with ``explained``) in input order;
    ``copies``: input keys left out (task fields copied from a mapped column)."""
    skip = set(copies)
    columns = ("status", *(("input",) if include_inputs else ()), "output", "error",
               *(("explanation",) if explained else ()))
    for item in store.iter_rows(job_id, columns, status=status):
        yield _row(item, include_inputs, skip, explained)


def _row(item: Any, include_inputs: bool, skip: set[str], explained: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {"seq": item.seq, "status": item.status}
    if include_inputs and item.input:
        row["input"] = {k: v for k, v in item.input.items() if k not in skip}
    row["output"] = item.output
    if explained:  # a job with the option explain: every row has the key (null for an item not explained)
        row["explanation"] = item.explanation
    row["error"] = item.error
    return row


EXPLANATION_COLUMNS = ("explanation.summary", "explanation.method", "explanation.target", "explanation.evidence")
"""The flat columns (CSV, Parquet) of an explained job's explanations, after the output columns; the evidence is
JSON text (a list of objects)."""


# -- columns from the output schema ------------------------------------------------------------------

@dataclass
class Columns:
    """The flat columns of an export, in order, with their Parquet kinds (int, float, bool, string)."""

    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)
    open: list[str] = field(default_factory=list)  # output prefixes whose keys the schema leaves open
    layout: list[tuple[str, bool]] = field(default_factory=list)  # (column or open prefix, is open), field order

    def names(self) -> list[str]:
        taken = set(self.outputs)
        return ["seq", *(input_column(key, taken) for key in self.inputs), *self.outputs, "status", "error"]

    def types(self) -> dict[str, str]:
        taken = set(self.outputs)
        kinds = {"seq": "int", "status": "string", "error": "string"}
        kinds.update({input_column(key, taken): self.kinds.get(key, "string") for key in self.inputs})
        kinds.update({key: self.kinds.get(f"out:{key}", "string") for key in self.outputs})
        return {name: kinds.get(name, "string") for name in self.names()}


def schema_columns(model: type[BaseModel] | None) -> Columns:
    """The flat output columns a pydantic ``Output`` model declares, in field order, with their kinds;
    fields whose keys the schema leaves open (``dict[str, X]``, ``Any``, unions of objects) are listed
    in ``open`` (their columns are found in the rows)."""
    columns = Columns()
    if model is not None:
        _walk(model, "", columns)
    return columns


def _walk(model: type[BaseModel], prefix: str, columns: Columns) -> None:
    for name, info in model.model_fields.items():  # outputs are stored as model_dump(mode="json"): by name
        _add(info.annotation, f"{prefix}{name}", columns)
    for name, computed in model.model_computed_fields.items():  # dumped after the fields
        _add(computed.return_type, f"{prefix}{name}", columns)
    if model.model_config.get("extra") == "allow":  # keys beyond the fields: found in the rows
        _open(columns, prefix[:-1])


def _add(annotation: Any, key: str, columns: Columns) -> None:
    annotation = _strip(annotation)
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _walk(annotation, f"{key}.", columns)
        return
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, frozenset):
        _column(columns, key, "string")  # JSON text
        return
    if origin is dict:
        key_type, value_type = (*typing.get_args(annotation), Any, Any)[:2]
        key_type = _strip(key_type)
        if typing.get_origin(key_type) is typing.Literal:
            for value in typing.get_args(key_type):
                _add(value_type, f"{key}.{value}", columns)
            return
        _open(columns, key)
        return
    kind = _kind(annotation)
    if kind is None:
        _open(columns, key)
        return
    _column(columns, key, kind)


def _column(columns: Columns, key: str, kind: str) -> None:
    columns.outputs.append(key)
    columns.kinds[f"out:{key}"] = kind
    columns.layout.append((key, False))


def _open(columns: Columns, key: str) -> None:
    columns.open.append(key)
    columns.layout.append((key, True))


def _strip(annotation: Any) -> Any:
    """``Annotated[X, ...]`` -> X; ``X | None`` -> X (other unions stay)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def _kind(annotation: Any) -> str | None:
    """The Parquet kind of a scalar annotation, or None when values may be objects (open)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        kinds = {_kind(type(value)) for value in typing.get_args(annotation)}
        return kinds.pop() if len(kinds) == 1 else "string"
    if origin in (typing.Union, types.UnionType):
        kinds = {_kind(_strip(arg)) for arg in typing.get_args(annotation) if arg is not type(None)}
        if None in kinds:
            return None
        if kinds == {"int", "float"}:
            return "float"
        return kinds.pop() if len(kinds) == 1 else "string"
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    if annotation is Any or annotation is object or (isinstance(annotation, type) and issubclass(annotation, dict)):
        return None
    return "string"  # str, enums, dates, UUIDs...: their JSON form is text


def export_columns(store: Store, job_id: str, output_model: type[BaseModel] | None, include_inputs: bool,
                   copies: Iterable[str] = (), explained: bool = False) -> Columns:
    """The flat columns of a job's export: outputs from the schema; inputs from what the job recorded when
    they were stored (``jobs.input_columns``); open output fields, and the inputs of a job that recorded none,
    from one read of the rows (skipped when there are neither); with ``explained``, the explanation's columns
    after the outputs (:data:`EXPLANATION_COLUMNS`)."""
    recorded = store.job(job_id).input_columns if include_inputs else None
    columns = _export_columns(store, job_id, output_model, include_inputs, copies, recorded)
    if explained:
        for name in EXPLANATION_COLUMNS:
            columns.outputs.append(name)
            columns.kinds[f"out:{name}"] = "string"
    return columns


def _export_columns(store: Store, job_id: str, output_model: type[BaseModel] | None, include_inputs: bool,
                    copies: Iterable[str] = (), recorded: list[Any] | None = None) -> Columns:
    columns = schema_columns(output_model)
    if output_model is None:
        _open(columns, "")  # no schema (the task is not installed): every output column from the rows
    skip = set(copies)
    inputs: dict[str, None] = {}
    input_kinds: dict[str, str] = {}
    read_inputs = include_inputs and recorded is None
    if include_inputs and recorded is not None:  # [[flat name, top-level key, kind or None], ...]
        for name, top, kind in recorded:
            if top not in skip:
                inputs[name] = None
                if kind is not None:
                    input_kinds[name] = kind
    if not read_inputs and not columns.open:
        columns.inputs = list(inputs)
        columns.kinds.update(input_kinds)
        return columns
    found: dict[str, None] = {}
    found_kinds: dict[str, str] = {}
    prefixes = tuple(f"{prefix}." if prefix else "" for prefix in columns.open)
    exact = set(columns.open)
    read = (*(("input",) if read_inputs else ()), *(("output",) if columns.open else ()))
    for row in store.iter_rows(job_id, read):  # only the columns that name columns: no output, no provenance
        if read_inputs and row.input:
            for key, value in flatten({k: v for k, v in row.input.items() if k not in skip}).items():
                inputs.setdefault(key, None)
                if value is not None:
                    input_kinds[key] = merge_kind(input_kinds.get(key), value_kind(value))
        if columns.open:
            for key, value in flatten(row.output).items():
                if key in exact or key.startswith(prefixes):
                    found.setdefault(key, None)
                    if value is not None:
                        found_kinds[key] = merge_kind(found_kinds.get(key), value_kind(value))
    columns.inputs = list(inputs)
    columns.kinds.update(input_kinds)
    if columns.open:
        # an open field's columns go where the schema declares the field, in the order the rows show them
        outputs: list[str] = []
        for key, is_open in columns.layout:
            if not is_open:
                outputs.append(key)
                continue
            for name in found:
                if not key or name == key or name.startswith(f"{key}."):
                    outputs.append(name)
                    columns.kinds.setdefault(f"out:{name}", found_kinds.get(name, "string"))
        columns.outputs = list(dict.fromkeys(outputs))
    return columns


# -- writers ------------------------------------------------------------------------------------------

def _flat(row: dict[str, Any], outputs: set[str]) -> dict[str, Any]:
    flat: dict[str, Any] = {"seq": row["seq"]}
    flat.update((input_column(key, outputs), value) for key, value in flatten(row.get("input")).items())
    flat.update(flatten(row.get("output")))
    if row.get("explanation"):
        flat.update(flatten({"explanation": row["explanation"]}))
    flat["status"] = row["status"]
    flat["error"] = row.get("error")
    return flat


def write_jsonl(handle: IO[str], rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    for row in rows:
        handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        count += 1
    return count


def write_csv(handle: IO[str], rows: Iterable[dict[str, Any]], columns: Columns) -> int:
    outputs = set(columns.outputs)
    writer = csv.DictWriter(handle, fieldnames=columns.names(), extrasaction="ignore")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(_flat(row, outputs))
        count += 1
    return count


def write_parquet(path: Path | IO[bytes], rows: Iterable[dict[str, Any]], columns: Columns) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError("writing Parquet needs pyarrow: pip install 'verticals[parquet]', or write .csv/.jsonl") \
            from None
    arrow = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "string": pa.string()}
    convert: dict[str, Any] = {"int": int, "float": float, "bool": bool, "string": _text}
    kinds = columns.types()
    schema = pa.schema([(name, arrow[kind]) for name, kind in kinds.items()])
    outputs = set(columns.outputs)
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        buffer: list[dict[str, Any]] = []
        for row in rows:
            flat = _flat(row, outputs)
            buffer.append({name: None if flat.get(name) is None else convert[kind](flat[name])
                           for name, kind in kinds.items()})
            count += 1
            if len(buffer) >= 1024:
                writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
                buffer = []
        writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
    return count


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str) \
        if isinstance(value, dict | list) else str(value)


# -- the export ---------------------------------------------------------------------------------------

def export_format(dest: str | Path, fmt: str | None = None) -> str:
    """csv, jsonl, parquet or folder: ``fmt`` when given, else from ``dest`` (no extension: a folder)."""
    if fmt:
        if fmt not in FORMATS:
            raise ExportError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")
        return fmt
    path = Path(dest)
    if path.suffix.lower() == ".zip":
        return ZIP
    if is_folder_output(path):
        return FOLDER
    try:
        return output_format(path)
    except InputError as error:
        raise ExportError(str(error)) from None


@dataclass
class _Plan:
    job: Any
    task_cls: Any
    include_inputs: bool
    copies: list[str]
    explained: bool = False  # the job option explain: rows carry each item's explanation


def _plan(store: Store, registry: Registry, job_id: str, include_inputs: bool | None) -> _Plan:
    job = store.job(job_id)
    task_cls = registry.tasks.get(job.task)
    if include_inputs is None:
        include_inputs = not (task_cls is not None and task_cls.sensitive)
    copies = list((job.options or {}).get("field_map") or {})
    return _Plan(job, task_cls, include_inputs, copies, bool((job.options or {}).get("explain")))


def export_job(store: Store, registry: Registry, job_id: str, dest: str | Path, include_inputs: bool | None = None,
               fmt: str | None = None) -> int:
    """Write a job's results to ``dest`` (a .csv/.jsonl/.parquet file, a folder, or a .zip of that folder);
    return the rows written.

    ``include_inputs=None``: inputs are exported unless the task is sensitive."""
    kind = export_format(dest, fmt)
    plan = _plan(store, registry, job_id, include_inputs)
    path = Path(dest)
    if kind == FOLDER:
        return _export_folder(store, plan, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == ZIP:
        with path.open("wb") as raw:
            return _export_zip(store, plan, raw)
    rows = result_rows(store, plan.job.id, plan.include_inputs, plan.copies, explained=plan.explained)
    if kind == "jsonl":
        with path.open("w", encoding="utf-8") as handle:
            return write_jsonl(handle, rows)
    columns = export_columns(store, plan.job.id, plan.task_cls.Output if plan.task_cls else None,
                             plan.include_inputs, plan.copies, plan.explained)
    if kind == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            return write_csv(handle, rows, columns)
    return write_parquet(path, rows, columns)


def stream_export(store: Store, registry: Registry, job_id: str, fmt: str, include_inputs: bool | None = None,
                  flush_rows: int = 500) -> Iterator[bytes]:
    """A job's results as CSV or JSONL bytes, produced as they are read (for an HTTP response)."""
    if fmt not in ("csv", "jsonl"):
        raise ExportError(f"cannot stream {fmt!r}: stream csv or jsonl (Parquet and folders are written to a path)")
    plan = _plan(store, registry, job_id, include_inputs)
    columns = export_columns(store, plan.job.id, plan.task_cls.Output if plan.task_cls else None,
                             plan.include_inputs, plan.copies, plan.explained) if fmt == "csv" else None
    return _stream(store, plan, fmt, columns, flush_rows)


def _stream(store: Store, plan: _Plan, fmt: str, columns: Columns | None, flush_rows: int) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = None
    if columns is not None:
        writer = csv.DictWriter(buffer, fieldnames=columns.names(), extrasaction="ignore")
        writer.writeheader()
    outputs = set(columns.outputs) if columns else set()
    for number, row in enumerate(result_rows(store, plan.job.id, plan.include_inputs, plan.copies,
                                             explained=plan.explained), 1):
        if writer is not None:
            writer.writerow(_flat(row, outputs))
        else:
            buffer.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        if number % flush_rows == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def write_zip(store: Store, registry: Registry, job_id: str, handle: IO[bytes],
              include_inputs: bool | None = None) -> int:
    """A folder export as a zip archive written to ``handle`` (e.g. a spooled temporary file an HTTP
    response then sends): ``results.jsonl``, the task's files, ``summary.json``. Returns the rows."""
    return _export_zip(store, _plan(store, registry, job_id, include_inputs), handle)


def _folder_rows(store: Store, plan: _Plan, put: Callable[[str, str], None]) -> Iterator[dict[str, Any]]:
    """The export rows of a folder export; each succeeded item's ``Task.files`` go to ``put(name, text)``
    as its row goes by (one read of the items)."""
    task = plan.task_cls() if plan.task_cls else None
    skip = set(plan.copies)
    context = access_context(plan.job.tenant_id)
    for item in store.iter_rows(plan.job.id):  # the input is read whatever is exported: Task.files takes it
        yield _row(item, plan.include_inputs, skip, plan.explained)
        if task is None or item.status != "succeeded" or item.input is None:
            continue
        files = task.files(plan.task_cls.Input.model_validate(item.input, context=context),
                           plan.task_cls.Output.model_validate(item.output))
        for name, text in files.items():
            put(name, text)


def _export_folder(store: Store, plan: _Plan, folder: Path) -> int:
    """``results.jsonl``, each succeeded item's ``Task.files``, ``summary.json``: one read of the items."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()

    def put(name: str, text: str) -> None:
        target = (folder / name).resolve()
        if root not in target.parents:
            raise ExportError(f"task wanted to write outside {folder}: {name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    with (folder / "results.jsonl").open("w", encoding="utf-8") as handle:
        count = write_jsonl(handle, _folder_rows(store, plan, put))
    summary = store.get_artifact(plan.job.id, "summary.json")
    if summary:
        (folder / "summary.json").write_bytes(summary.content)
    return count


def _export_zip(store: Store, plan: _Plan, raw: IO[bytes]) -> int:
    import posixpath
    import shutil
    import tempfile
    import zipfile

    written: set[str] = set()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def put(name: str, text: str) -> None:
            clean = posixpath.normpath(name.replace("\\", "/"))
            if clean.startswith(("/", "../")) or clean in ("..", ".", "results.jsonl", "summary.json"):
                raise ExportError(f"task wanted to write outside the archive's folder: {name}")
            if clean in written:  # a name given twice: the archive keeps the first text (one entry per name)
                return
            written.add(clean)
            archive.writestr(clean, text.encode("utf-8"))

        # the rows are spooled (memory up to 8 MiB, then a temporary file): the archive takes one entry at a time
        with tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+b") as spool:
            text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
            count = write_jsonl(text, _folder_rows(store, plan, put))
            text.flush()
            spool.seek(0)
            with archive.open("results.jsonl", "w") as entry:
                shutil.copyfileobj(spool, entry)
            text.detach()
        summary = store.get_artifact(plan.job.id, "summary.json")
        if summary:
            archive.writestr("summary.json", summary.content)
    return count
