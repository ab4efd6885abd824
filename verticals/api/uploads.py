"""Rows from an uploaded file (CSV, JSONL, TXT), read as a stream from the spooled upload.

Starlette spools an upload to a temporary file on disk past 1 MiB; these readers
go through it row by row, so neither the server nor the database insert ever
holds the whole file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Iterator
from typing import IO, Any

from verticals.core.io import (
    BOMS,
    SPREADSHEETS,
    InputError,
    first_undecodable_line,
    iter_csv,
    iter_jsonl,
    not_decodable,
)

UPLOAD_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}


def upload_format(filename: str | None, fmt: str | None) -> str:
    if fmt:
        if fmt not in {"csv", "jsonl", "txt"}:
            raise InputError(f"unknown format {fmt!r}: use csv, jsonl or txt")
        return fmt
    name = (filename or "").lower()
    for suffix, kind in UPLOAD_FORMATS.items():
        if name.endswith(suffix):
            return kind
    if name.endswith(SPREADSHEETS):
        raise InputError(f"{filename!r} is a spreadsheet, which verticals does not read: save the sheet as CSV "
                         "(UTF-8) and upload the .csv file")
    if name.endswith(".parquet"):
        raise InputError(f"{filename!r}: Parquet files cannot be uploaded (a stream of rows is needed): upload "
                         "CSV, JSONL or TXT")
    raise InputError(f"cannot tell the format of {filename or 'the upload'!r}: name it .csv, .jsonl or .txt, "
                     "or pass the form field format=csv|jsonl|txt")


def iter_rows(raw: IO[bytes], kind: str) -> Iterator[dict[str, Any]]:
    """Yield one dict per row from the start of ``raw`` (left open).

    The same rules as files given to the CLI (:mod:`verticals.core.io`): an unbalanced quote in a CSV
    upload, a line that is not JSON or not UTF-8 is an :class:`InputError` naming its line.
    """
    raw.seek(0)
    start = raw.read(4)
    for bom, name in BOMS:
        if start.startswith(bom):
            raise InputError(f"the upload is {name.upper()} text, not UTF-8: save it as UTF-8 and upload again")
    raw.seek(0)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="" if kind == "csv" else None)
    try:
        if kind == "csv":
            yield from iter_csv(text, "the upload:")
        elif kind == "jsonl":
            yield from iter_jsonl(text, "the upload:")
        else:
            for line in text:
                if line.strip():
                    yield {"text": line.rstrip("\r\n")}
    except UnicodeDecodeError:
        bad_line = first_undecodable_line(raw, "utf-8-sig")
        raise not_decodable("the upload", bad_line, "utf-8", "save it as UTF-8 and upload again") from None
    finally:
        with contextlib.suppress(ValueError):  # already closed
            text.detach()


def scan(raw: IO[bytes], kind: str, extra: bytes) -> tuple[int, str]:
    """First pass: check every row parses; return (row count, SHA-256 of the file + ``extra``)."""
    digest = hashlib.sha256(extra)
    raw.seek(0)
    for block in iter(lambda: raw.read(1 << 20), b""):
        digest.update(block)
    count = sum(1 for _ in iter_rows(raw, kind))
    return count, digest.hexdigest()
