"""The one rule for the text verticals stores: valid Unicode, nested at most :data:`MAX_DEPTH` levels.

Python strings may hold *lone surrogates* (``"\\ud800"``: half of a UTF-16 pair, which a JSON escape can
produce); no UTF-8 writer can encode them, so one such value used to break every export of its job (CSV,
JSONL, Parquet, ``results?include_inputs=true``). The rule, held in one place:

- **Input is refused where it is read**, naming the line (a JSONL file or upload: :func:`check_row` from
  :func:`verticals.core.io.iter_jsonl`) or the item and field (JSON bodies, the SDK: ``submit_job``), before
  anything of the job is stored. JSON nested deeper than :data:`MAX_DEPTH` levels is refused the same way
  (a 100,000-deep line is an error line, never a ``RecursionError``).
- **What reaches the store anyway** (a task's output, rows stored by an older version) is read back with
  each lone surrogate replaced by U+FFFD (:func:`load_json`, the store's JSON decoder), and error texts are
  stored that way (:func:`valid_text`): every stored text can be exported.

Other characters (NUL, controls, non-characters) are valid Unicode: stored and exported as they are.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 100
"""Deepest nesting of lists and objects an item or a parameter value may have."""

_SURROGATE = re.compile("[\ud800-\udfff]")


_SCALARS = (int, float, bool, type(None))


def unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be stored (a lone surrogate, too deep), without quoting it; None when it can.
    ``where`` paths are field names and list positions (``notes[2].text``). A flat row of ASCII text and
    numbers (the common case) is answered without a walk."""
    if type(value) is dict and all(type(key) is str and key.isascii() and (
            type(item) in _SCALARS or (type(item) is str and item.isascii())) for key, item in value.items()):
        return None
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        current, depth, where = stack.pop()
        if isinstance(current, str):
            if not current.isascii() and not _encodes(current):
                found = _SURROGATE.search(current)
                code = f"U+{ord(found.group()):04X}" if found else "a surrogate"
                return (f"{where or 'the value'} holds a lone surrogate ({code}, half of a UTF-16 pair): not valid "
                        "Unicode text. Fix the encoding of the source (a JSON \\ud800-\\udfff escape must be "
                        "one of a pair)")
            continue
        if isinstance(current, dict | list | tuple):
            if depth >= MAX_DEPTH:
                shown = where if len(where) <= 40 else where[:40] + "..."
                return f"{shown or 'the value'} is nested deeper than {MAX_DEPTH} levels"
            if isinstance(current, dict):
                for key, item in current.items():
                    name = f"{where}.{key}" if where else str(key)
                    if isinstance(key, str) and not key.isascii() and not _encodes(key):
                        return (f"a field name{' in ' + where if where else ''} holds a lone surrogate: not valid "
                                "Unicode text")
                    stack.append((item, depth + 1, name))
            else:
                stack.extend((item, depth + 1, f"{where}[{index}]") for index, item in enumerate(current))
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def valid_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (for texts the store writes as they are)."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {valid_text(key) if isinstance(key, str) else key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def load_json(text: str | bytes) -> Any:
    """The store's JSON decoder: ``json.loads`` with lone surrogates replaced by U+FFFD (only when the text
    holds a ``\\ud8..``-``\\udf..`` escape: the common case costs one substring search)."""
    value = json.loads(text)
    raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
    if "\\ud" in raw or "\\uD" in raw:
        return _scrub(value)
    return value
