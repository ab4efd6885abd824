"""Reading input files into item rows, and writing results out (CSV, JSONL, Parquet, TXT).

Everything streams: rows are read and written one at a time (Parquet in record
batches), so a large file never sits whole in memory.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet",
           ".txt": "txt"}


class InputError(ValueError):
    """The input file cannot be read as asked; the message says what to do."""


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if not found:
        raise InputError(f"cannot tell the format of {path.name}: use a .csv, .jsonl, .parquet or .txt file, "
                         "or pass --format")
    return found


def read_rows(path: str | Path, fmt: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield one dict per row. TXT files give ``{"text": line}`` per non-empty line."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input file {path} does not exist")
    kind = detect_format(path, fmt)
    if kind == "csv":
        csv.field_size_limit(sys.maxsize)
        with path.open(newline="", encoding="utf-8-sig") as handle:
            yield from csv.DictReader(handle)
    elif kind == "jsonl":
        with path.open(encoding="utf-8") as handle:
            yield from iter_jsonl(handle, path.name)
    elif kind == "parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError("reading Parquet needs pyarrow: pip install 'verticals[parquet]'") from None
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            yield from batch.to_pylist()
    elif kind == "txt":
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield {"text": line.rstrip("\n")}
    else:
        raise InputError(f"unknown input format {kind!r}")


def iter_jsonl(lines: Iterable[str], where: str) -> Iterator[dict[str, Any]]:
    """One JSON object per non-empty line; a bad line is reported with its number (``where`` names the source)."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{where} line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{where} line {number} is not a JSON object")
        yield row


def map_fields(rows: Iterable[dict[str, Any]], mapping: dict[str, str], required: str | None = None,
               ) -> Iterator[dict[str, Any]]:
    """Copy columns into task fields (``mapping``: task field -> column).

    ``required`` is the task's text field: when it is missing and the file has
    a single column, that column is used; otherwise the error lists the columns.
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
                                     f"Pick one with --text-column COLUMN")
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


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """An export row (seq, status, input, output, error) as one flat record."""
    inputs = flatten(row.get("input"))
    outputs = flatten(row.get("output"))
    flat = {"seq": row["seq"], **inputs}
    for key, value in outputs.items():
        flat[f"output.{key}" if key in inputs else key] = value
    flat["status"] = row["status"]
    flat["error"] = row.get("error")
    return flat


def write_rows(path: str | Path, rows: Iterable[dict[str, Any]], columns: list[str] | None = None,
               fmt: str | None = None) -> int:
    """Write export rows to CSV / JSONL / Parquet. CSV and Parquet need ``columns`` (flat keys)."""
    path = Path(path)
    kind = detect_format(path, fmt)
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

        writer, buffer = None, []
        for row in rows:
            flat = flat_row(row)
            buffer.append({c: (None if flat.get(c) is None else str(flat.get(c))) for c in columns or []})
            count += 1
            if len(buffer) >= 1024:
                table = pa.Table.from_pylist(buffer, schema=pa.schema([(c, pa.string()) for c in columns or []]))
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
                buffer = []
        table = pa.Table.from_pylist(buffer, schema=pa.schema([(c, pa.string()) for c in columns or []]))
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        writer.close()
    else:
        raise InputError(f"cannot write {kind!r} output: use .csv, .jsonl or .parquet")
    return count
