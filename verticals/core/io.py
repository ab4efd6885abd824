"""Reading input files into item rows, and writing results out (CSV, JSONL, Parquet, TXT).

Everything streams: rows are read and written one at a time (Parquet in record
batches), so a large file never sits whole in memory.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import importlib.util
import json
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from verticals.core.text import MAX_DEPTH, unstorable

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet",
           ".txt": "txt"}
OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
SPREADSHEETS = (".xlsx", ".xls", ".xlsm", ".ods", ".numbers")
# Byte-order marks of encodings that are not UTF-8 (UTF-32 first: its little-endian mark starts like UTF-16's).
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))


class InputError(ValueError):
    """The input file cannot be read as asked; the message says what to do."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read 1 MiB at a time (data hashes of eval runs, weight fingerprints)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _private_csv_module() -> Any:
    """An instance of the ``_csv`` extension of our own, or None where one cannot be made.

    The csv module's field size limit (131072 characters) is process-wide state: raising it with
    ``csv.field_size_limit`` would change every CSV reader of the application that embeds verticals.
    ``_csv`` keeps the limit in its module state (multi-phase init), so a second instance of it has a
    limit of its own, and only our readers have none.
    """
    try:
        spec = importlib.util.find_spec("_csv")
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        before = csv.field_size_limit()
        module.field_size_limit(sys.maxsize)
        if module is sys.modules.get("_csv") or csv.field_size_limit() != before:  # shared state: undo, unusable
            csv.field_size_limit(before)
            return None
        return module
    except Exception:  # any failure means: use the fallback
        return None


_CSV = _private_csv_module()
_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_field_limit() -> Iterator[None]:
    """Fallback where no private ``_csv`` can be made: lift the shared limit while one row is read, then restore it."""
    if _CSV is not None:
        yield
        return
    with _LIMIT_LOCK:
        previous = csv.field_size_limit(sys.maxsize)
        try:
            yield
        finally:
            csv.field_size_limit(previous)


def detect_format(path: Path, fmt: str | None = None) -> str:
    """The input format of ``path`` (``fmt`` when given: the ``--format`` option)."""
    if fmt:
        if fmt not in set(FORMATS.values()):
            raise InputError(f"unknown input format {fmt!r}: use csv, jsonl, parquet or txt")
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if not found:
        if path.suffix.lower() in SPREADSHEETS:
            raise InputError(f"{path.name} is a spreadsheet, which verticals does not read: save the sheet as "
                             "CSV (UTF-8) and run on the .csv file")
        raise InputError(f"cannot tell the format of {path.name}: use a .csv, .jsonl, .parquet or .txt file, "
                         "or pass --format csv|jsonl|parquet|txt")
    return found


def output_format(path: Path) -> str:
    """The format results are written in at ``path`` (a file name ending .csv, .jsonl or .parquet)."""
    found = OUTPUT_FORMATS.get(path.suffix.lower())
    if not found:
        raise InputError(f"cannot write results to {path.name}: name the output .csv, .jsonl or .parquet "
                         "(or give a folder)")
    return found


def is_folder_output(path: Path) -> bool:
    """Whether results go into a folder (no extension, an existing folder, or a trailing slash)."""
    return path.suffix == "" or path.is_dir() or str(path).endswith(("/", "\\"))


def check_output(path: str | Path) -> None:
    """Refuse an output the results could not be written to, before any job runs: unknown extension,
    Parquet without pyarrow, a folder or file that cannot be created or written, and a path whose folder does not
    exist (a typo in ``-o /data/reslts/out.csv`` would otherwise create a tree of folders nobody asked for; an
    output folder itself, ``-o results/``, is created)."""
    path = Path(path)
    folder = is_folder_output(path)
    if not folder and output_format(path) == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise InputError("writing Parquet needs pyarrow: pip install 'verticals[parquet]', or write .csv/.jsonl")
    target = path if folder else path.parent
    parent = target.parent if folder else target
    if not parent.is_dir():
        missing = parent
        while not missing.parent.is_dir() and missing.parent != missing:
            missing = missing.parent
        raise InputError(f"cannot write results to {path}: the folder {missing} does not exist; create it first "
                         f"(mkdir -p {parent}) or choose another -o path")
    try:
        target.mkdir(exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot write results to {path}: cannot create the folder {target} "
                         f"({error.strerror or error}); choose another -o path") from None
    probe = path / ".verticals-write-test" if folder else path
    if probe.is_dir():
        raise InputError(f"cannot write results to {path}: it is a folder; name a file or end the path with /")
    existed = probe.exists()
    try:
        with probe.open("ab"):
            pass
    except OSError as error:
        raise InputError(f"cannot write results to {path} ({error.strerror or error}); choose another -o path") \
            from None
    if not existed:
        probe.unlink(missing_ok=True)


def _check_encoding(path: Path, encoding: str | None) -> str:
    """The encoding to read a text input with; a file with a UTF-16/32 byte-order mark is refused
    unless ``encoding`` names it (a clear message instead of a decoding traceback)."""
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InputError(f"unknown encoding {encoding!r} (e.g. utf-8, cp1252, latin-1, utf-16)") from None
        return encoding
    with path.open("rb") as handle:
        start = handle.read(4)
    for bom, name in BOMS:
        if start.startswith(bom):
            raise InputError(f"{path.name} is {name.upper()} text, not UTF-8: re-save it as UTF-8, "
                             f"or pass --encoding {name}")
    return "utf-8-sig"


def first_undecodable_line(raw: IO[bytes], encoding: str) -> int | None:
    """The number of the first line of ``raw`` (from its start) that does not decode, or None."""
    raw.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    for number, line in enumerate(raw, 1):
        try:
            decoder.decode(line)
        except UnicodeDecodeError:
            return number
    return None


def not_decodable(where: str, line: int | None, encoding: str, hint: str) -> InputError:
    name = "UTF-8" if encoding.replace("_", "-").lower() in ("utf-8", "utf-8-sig", "utf8") else encoding
    at = f" (line {line})" if line else ""
    return InputError(f"{where} is not {name} text{at}: {hint}")


def read_rows(path: str | Path, fmt: str | None = None, encoding: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield one dict per row. TXT files give ``{"text": line}`` per non-empty line.

    Every problem is an :class:`InputError` whose message names the file and, for text formats, the line:
    a missing file, a folder, an unknown or fake format, text that does not decode (``encoding``: default
    UTF-8), an unbalanced quote in a CSV file (see :func:`iter_csv`), a line that is not JSON.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"input file {path} does not exist")
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a file (.csv, .jsonl, .parquet or .txt)")
    kind = detect_format(path, fmt)
    try:
        if kind == "parquet":
            yield from _read_parquet(path)
            return
        text_encoding = _check_encoding(path, encoding)
        try:
            with path.open(newline="" if kind == "csv" else None, encoding=text_encoding) as handle:
                if kind == "csv":
                    yield from iter_csv(handle, path.name)
                elif kind == "jsonl":
                    yield from iter_jsonl(handle, path.name)
                else:
                    for line in handle:
                        if line.strip():
                            yield {"text": line.rstrip("\n")}
        except UnicodeDecodeError:
            with path.open("rb") as raw:
                bad_line = first_undecodable_line(raw, text_encoding)
            raise not_decodable(path.name, bad_line, text_encoding,
                                "re-save it as UTF-8, or pass --encoding ENCODING (e.g. --encoding cp1252)") from None
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied") from None
    except IsADirectoryError:  # pragma: no cover - checked above
        raise InputError(f"{path} is a folder: give a file") from None


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow: pip install 'verticals[parquet]'") from None
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"{path.name} is not a readable Parquet file ({error}): check the file, or pass "
                         "--format csv|jsonl|txt if it is text") from None
    for batch in parquet.iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def iter_csv(lines: Iterable[str], where: str) -> Iterator[dict[str, Any]]:
    """Rows of a CSV text with a header line, as dicts; nothing is swallowed or dropped silently.

    Python's csv module, left lenient, reads a quote that is never closed as a field that runs on to
    the end of the file (or to the next stray quote): every row after it disappears into one text. Here
    the reader is strict, so that case is an :class:`InputError` naming the line where the quoted field
    starts; so is a row with more fields than the header (a value would be dropped) and a header that
    names a column twice. Blank lines are skipped; a row with fewer fields gets None for the rest.
    """
    module = _CSV or csv
    reader = module.reader(lines, strict=True)  # no field size limit, and the process's csv module left as it is
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            with _no_field_limit():
                record = next(reader)
        except StopIteration:
            return
        except module.Error as error:
            if reader.line_num > start or "end of data" in str(error):
                raise InputError(f"{where} line {start}: a quoted field starts here and is not closed where it "
                                 f"should be (the CSV reader stopped at line {reader.line_num}: {error}); every "
                                 "row after it would be swallowed into one value. Close the quote, or double "
                                 "quotes inside a quoted value (\"\")") from None
            raise InputError(f"{where} line {start} is not valid CSV ({error}): a quote inside a value must be "
                             "doubled (\"\") and the value quoted") from None
        if not record:
            continue
        if header is None:
            header = record
            seen: set[str] = set()
            for name in header:
                if name in seen:
                    raise InputError(f"{where} line {start}: the header names the column {name!r} twice; "
                                     "rename one (one of them would be lost)")
                seen.add(name)
            continue
        if len(record) > len(header) and any(value != "" for value in record[len(header):]):
            raise InputError(f"{where} line {start} has {len(record)} fields, the header has {len(header)}: "
                             "quote values that contain a comma")
        yield {name: (record[index] if index < len(record) else None) for index, name in enumerate(header)}


def iter_jsonl(lines: Iterable[str], where: str) -> Iterator[dict[str, Any]]:
    """One JSON object per non-empty line; a bad line is reported with its number (``where`` names the source)."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{where} line {number} is not valid JSON ({error.msg})") from None
        except RecursionError:
            raise InputError(f"{where} line {number} is JSON nested deeper than {MAX_DEPTH} levels") from None
        if not isinstance(row, dict):
            raise InputError(f"{where} line {number} is not a JSON object")
        # the store's rule (verticals.core.text), with the line that breaks it; a line with no surrogate escape
        # and too few brackets to nest that deep cannot break it (UTF-8 text itself holds no surrogate)
        suspect = "\\ud" in line or "\\uD" in line or line.count("[") + line.count("{") > MAX_DEPTH
        problem = unstorable(row) if suspect else None
        if problem:
            raise InputError(f"{where} line {number}: {problem}")
        yield row


def map_fields(rows: Iterable[dict[str, Any]], mapping: dict[str, str], required: str | None = None,
               pick: str = "--text-column COLUMN") -> Iterator[dict[str, Any]]:
    """Copy columns into task fields (``mapping``: task field -> column).

    ``required`` is the task's text field: when it is missing and the file has
    a single column, that column is used; otherwise the error lists the columns
    and says how to pick one (``pick``: the CLI option, or the API's form field).
    """
    for number, row in enumerate(rows, 1):
        if number == 1:
            for field, column in mapping.items():
                if column not in row:
                    raise InputError(f"column {column!r} (for field {field!r}) is not in the input; "
                                     f"columns: {', '.join(map(str, row)) or 'none'}")
            if required and required not in row and required not in mapping:
                if len(row) == 1:
                    mapping = {**mapping, required: next(iter(row))}
                else:
                    raise InputError(f"the input has no {required!r} column; columns: {', '.join(map(str, row))}. "
                                     f"Pick one with {pick}")
        yield {**row, **{field: row.get(column) for field, column in mapping.items()}}


def flatten(value: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys; lists become JSON text (for CSV and Parquet)."""
    flat: dict[str, Any] = {}
    for key, item in (value or {}).items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            flat.update(flatten(item, f"{name}."))
        elif isinstance(item, list):
            flat[name] = json.dumps(item, ensure_ascii=False)
        else:
            flat[name] = item
    return flat


def value_kind(value: Any) -> str:
    """The Parquet kind of a flat value (not None): bool, int, float or string."""
    return ("bool" if isinstance(value, bool) else "int" if isinstance(value, int)
            else "float" if isinstance(value, float) else "string")


def merge_kind(seen: str | None, new: str) -> str:
    """The kind of a column whose values so far had kind ``seen`` (None: only nulls) once it holds ``new``."""
    if seen is None or seen == new:
        return new
    return "float" if {seen, new} == {"int", "float"} else "string"


_SCALAR_KINDS: dict[type, str] = {str: "string", bool: "bool", int: "int", float: "float"}


class InputColumns:
    """The flat columns of a job's stored inputs, gathered while they are stored (``submit_job``), so that an
    export need not read every input once more to name its columns: each column in the order it first appears,
    with the top-level key it comes from (an export leaves out the keys it copies) and its Parquet kind (None:
    only nulls so far). What :func:`flatten` would give for every input, and the same kinds."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {}  # flat name -> [top-level key, kind]

    def add(self, data: dict[str, Any] | None) -> None:
        columns = self.columns
        for key, value in (data or {}).items():
            kind = _SCALAR_KINDS.get(type(value))
            if kind is None:  # nested, a list, None, a subclass: flatten's own rules (a rare path)
                self._add_flat(key, flatten({key: value}))
                continue
            column = columns.get(key)
            if column is None:
                columns[key] = [key, kind]
            elif column[1] != kind:
                column[1] = merge_kind(column[1], kind)

    def _add_flat(self, top: str, flat: dict[str, Any]) -> None:
        for name, value in flat.items():
            column = self.columns.setdefault(name, [top, None])
            if value is not None:
                column[1] = merge_kind(column[1], value_kind(value))

    def to_json(self) -> list[list[Any]]:
        """``[[flat name, top-level key, kind or None], ...]``: what the job row keeps (``jobs.input_columns``)."""
        return [[name, top, kind] for name, (top, kind) in self.columns.items()]


FLAT_RESERVED = ("seq", "status", "error")


def input_column(key: str, outputs: Iterable[str]) -> str:
    """An input column's name in a flat export (CSV, Parquet): its own, or ``input.NAME`` when an output column
    (or ``seq``/``status``/``error``) has that name. The result's columns keep their names whatever the input
    holds: a labelled file's ``label`` column is exported as ``input.label`` next to the task's ``label``."""
    return f"input.{key}" if key in FLAT_RESERVED or key in outputs else key


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """An export row (seq, status, input, output, error) as one flat record."""
    outputs = flatten(row.get("output"))
    flat = {"seq": row["seq"]}
    flat.update((input_column(key, outputs), value) for key, value in flatten(row.get("input")).items())
    flat.update(outputs)
    flat["status"] = row["status"]
    flat["error"] = row.get("error")
    return flat


def flat_columns(rows: Iterable[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """The columns of the flat records of ``rows`` in schema order (seq, inputs, outputs, status, error),
    whatever row first shows a column, and each column's value kind for Parquet: ``int``, ``float``,
    ``bool`` or ``string`` (a column whose values mix kinds, e.g. int and text, is ``string``)."""
    inputs: dict[str, None] = {}
    outputs: dict[str, None] = {}
    kinds: dict[str, set[str]] = {}
    for row in rows:
        flat_out = flatten(row.get("output"))
        inputs.update(dict.fromkeys(input_column(key, flat_out) for key in flatten(row.get("input"))))
        outputs.update(dict.fromkeys(flat_out))
        for key, value in flat_row(row).items():
            if value is not None:
                kinds.setdefault(key, set()).add(
                    "bool" if isinstance(value, bool) else "int" if isinstance(value, int)
                    else "float" if isinstance(value, float) else "string")
    columns = ["seq", *(key for key in inputs if key not in outputs), *outputs, "status", "error"]
    types = {}
    for column in columns:
        seen = kinds.get(column, set())
        types[column] = ("float" if seen == {"int", "float"} else next(iter(seen)) if len(seen) == 1 else "string")
    return columns, types


def write_rows(path: str | Path, rows: Iterable[dict[str, Any]], columns: list[str] | None = None,
               fmt: str | None = None, types: dict[str, str] | None = None) -> int:
    """Write export rows to CSV / JSONL / Parquet. CSV and Parquet need ``columns`` (flat keys); Parquet
    columns get ``types`` (column -> int, float, bool or string; see :func:`flat_columns`), text otherwise."""
    path = Path(path)
    kind = fmt or output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if kind == "jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
                count += 1
    elif kind == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns or [], extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow(flat_row(row))
                count += 1
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "string": pa.string()}
        convert = {"int": int, "float": float, "bool": bool, "string": str}
        kinds = {c: (types or {}).get(c, "string") for c in columns or []}
        schema = pa.schema([(c, arrow[kind]) for c, kind in kinds.items()])
        writer, buffer = None, []
        for row in rows:
            flat = flat_row(row)
            buffer.append({c: (None if flat.get(c) is None else convert[kind](flat.get(c)))
                           for c, kind in kinds.items()})
            count += 1
            if len(buffer) >= 1024:
                table = pa.Table.from_pylist(buffer, schema=schema)
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
                buffer = []
        table = pa.Table.from_pylist(buffer, schema=schema)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        writer.close()
    else:
        raise InputError(f"cannot write {kind!r} output: name the output .csv, .jsonl or .parquet")
    return count
