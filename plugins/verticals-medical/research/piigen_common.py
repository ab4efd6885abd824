"""Shared mechanics of the generic PII generators: fill a template, record the gold spans as values go in.

A template is a string with ``{slot}`` fields; :func:`fill` replaces each with the value a callable returns and
records a gold span ``{start, end, label, text}`` for the slots that are PHI (``label`` not None). Slot values
may themselves be lists of ``(text, label)`` pieces (an address whose street, city and ZIP are separate spans).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Piece = tuple[str, str | None]
Slot = Callable[[], "str | list[Piece]"]

_FIELD = re.compile(r"\{(\w+)\}")


def fill(template: str, slots: dict[str, tuple[str | None, Slot]]) -> dict[str, Any]:
    """``slots``: name -> (label or None, value callable). The same slot used twice in one template gets the
    same value (a letter that names its addressee twice)."""
    out: list[str] = []
    spans: list[dict[str, Any]] = []
    position = 0
    cache: dict[str, list[Piece]] = {}
    cursor = 0
    for match in _FIELD.finditer(template):
        literal = template[cursor:match.start()]
        out.append(literal)
        position += len(literal)
        name = match.group(1)
        label, make = slots[name]
        if name not in cache:
            value = make()
            cache[name] = [(value, label)] if isinstance(value, str) else list(value)
        for text, piece_label in cache[name]:
            if piece_label and text.strip():
                spans.append({"start": position, "end": position + len(text), "label": piece_label, "text": text})
            out.append(text)
            position += len(text)
        cursor = match.end()
    out.append(template[cursor:])
    return {"text": "".join(out), "spans": spans}


def write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def check(rows: list[dict[str, Any]]) -> None:
    """Every gold span's offsets give back its text (a generator bug would corrupt the measure)."""
    for row in rows:
        for span in row["spans"]:
            assert row["text"][span["start"]:span["end"]] == span["text"], (row["id"], span)


def fixed_hash_seed() -> None:
    """Run this command again with ``PYTHONHASHSEED=0`` unless it already has it: some of Faker's locales
    (``it_IT`` cities) and ``piigen_tune``'s locale set iterate sets, whose order follows the process's hash seed,
    so the same ``--seed`` wrote different files from one run to the next. Call it first in a command's main."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})


def generate_main(argv: list[str] | None, doc: str | None, rows: Callable[[int, int], list[dict[str, Any]]],
                  n: int, seed: int) -> None:
    """The command line every generator shares: ``--n`` texts from ``--seed``, written as JSONL to ``--out``.

    Run as a command, it runs itself again with a fixed hash seed first (:func:`fixed_hash_seed`)."""
    if argv is None:
        fixed_hash_seed()
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=n)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    write(Path(args.out), rows(args.n, args.seed))
