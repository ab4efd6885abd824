"""Rendering results and summaries for the terminal: the preview table of a job's first results and the
job summary. Everything here prints to stderr (``err``), so stdout stays data only.

Both read at 80 columns and in pipes (Rich takes the width from the terminal, ``COLUMNS``, or 80 when the
output is not a terminal):

- the preview always keeps its ``#`` and ``status`` columns whole; the task chooses the other columns
  (``Task.preview``: Output fields, else Input fields, dotted paths into nested results, ``HEADER=path`` to
  name a column); without a choice, the text field (never for a ``sensitive`` task) and the first few scalar
  Output fields. A cell is one line: long texts are cut with an ellipsis, a multi-line text shows its first
  line and its line count, a list of entities/spans shows its count then ``text [CATEGORY]`` pairs, a dict of
  counts ``key=value`` pairs;
- a job summary (``summary.json``) is shown as tables where it is flat enough: scalars as ``name value``
  lines, dicts of figures with the same keys side by side in one table, dicts of flat dicts and lists of flat
  dicts as tables, lists of names on one line; deeper parts as JSON. A multi-line text in a summary that
  also has a table of rows is that table pre-rendered for files, and is left out.
"""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from verticals.cli.console import _joined, err

# a preview value column (not the text column) is at most this wide
VALUE_WIDTH = 24
# the text column(s) of a preview get what is left, but at least this
MIN_TEXT_WIDTH = 12
MIN_NARROW_TEXT = 5  # in a narrow terminal, the text columns give way down to this before the other columns
STATUS_WIDTH = 9  # "succeeded"
ERROR_WIDTH = 28  # a failed item's status cell: "failed: <error>", cut


# -- cells ------------------------------------------------------------------------------------------------------

def _number(value: float) -> str:
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3f}"


def _numeric(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)


def _label_of(entry: dict[str, Any]) -> str:
    """``text [CATEGORY]`` (``, assertion`` when it is not plain present) for an entity- or span-like dict."""
    text = next((str(entry[key]) for key in ("text", "name", "value", "replacement") if entry.get(key) is not None),
                None)
    kind = next((str(entry[key]) for key in ("category", "label", "type", "kind") if entry.get(key)), None)
    extra = entry.get("assertion")
    tags = ", ".join(t for t in (kind, extra if extra not in (None, "present") else None) if t)
    if text is None:
        return tags or json.dumps(entry, default=str, separators=(",", ":"))
    return f"{text} [{tags}]" if tags else text


def cell(value: Any) -> str:
    """One value as a one-line cell (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        lines = [line for line in value.splitlines() if line.strip()]
        if len(lines) > 1:
            return f"{lines[0].strip()} … ({len(value.splitlines())} lines)"
        return " ".join(value.split())
    if isinstance(value, list):
        if not value:
            return "—"
        if all(isinstance(entry, dict) for entry in value):
            return f"{len(value)}: " + "; ".join(_label_of(entry) for entry in value)
        shown = ", ".join(cell(entry) for entry in value)
        return f"{len(value)}: {shown}" if len(value) > 3 else shown
    if isinstance(value, dict):
        if all(not isinstance(v, dict | list) for v in value.values()):
            return ", ".join(f"{k}={cell(v)}" for k, v in value.items()) or "—"
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def _lookup(data: dict[str, Any] | None, path: str) -> tuple[bool, Any]:
    """(found, value) of a dotted ``path`` in ``data``."""
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current


# -- preview ------------------------------------------------------------------------------------------------------

def _columns(task_cls: Any, rows: list[Any]) -> list[tuple[str, str, str]]:
    """The preview's value columns as (header, "output" | "input", path), empty ones left out."""
    chosen = getattr(task_cls, "preview", None) if task_cls is not None else None
    sensitive = bool(getattr(task_cls, "sensitive", False))
    columns: list[tuple[str, str, str]] = []
    if chosen:
        output_fields = set(getattr(getattr(task_cls, "Output", None), "model_fields", {}) or {})
        for entry in chosen:
            header, sep, path = entry.partition("=")
            path = path if sep else header
            header = header if sep else path.rsplit(".", 1)[-1]
            head = path.split(".", 1)[0]
            in_output = head in output_fields or any(_lookup(item.output, path)[0] for item in rows)
            if not in_output and sensitive:
                continue  # a sensitive task's inputs are never previewed
            columns.append((header, "output" if in_output else "input", path))
    else:
        if task_cls is not None and task_cls.text_field and not sensitive:
            columns.append((task_cls.text_field, "input", task_cls.text_field))
        keys: list[str] = []
        for item in rows:
            for key, value in (item.output or {}).items():
                # an optional field left empty on every previewed row (e.g. entities not asked for) takes no column
                if key not in keys and value is not None and not isinstance(value, dict | list) and len(keys) < 4:
                    keys.append(key)
        columns += [(key, "output", key) for key in keys]
    return [(header, where, path) for header, where, path in columns
            if any(_value(item, where, path, sensitive) not in (None, "") for item in rows)]


def _value(item: Any, where: str, path: str, sensitive: bool) -> Any:
    """The value of a preview column for one item: from its output, else (a failed item has no output) from its
    input under the same name, never from a sensitive task's input."""
    if where == "output":
        found, value = _lookup(item.output, path)
        if found or sensitive:
            return value
    return _lookup(item.input, path)[1]


def preview_table(task_cls: Any, rows: list[Any], title: str, width: int) -> Table:
    """The preview of ``rows`` (stored items) for a console ``width`` columns wide: never wider."""
    columns = _columns(task_cls, rows)
    sensitive = bool(getattr(task_cls, "sensitive", False))
    raw = [[_value(item, where, path, sensitive) for _header, where, path in columns] for item in rows]
    cells = [[cell(value) for value in row] for row in raw]
    seq_width = max(1, len(str(rows[-1].seq)))
    natural = [max([len(header)] + [len(row[i]) for row in cells]) for i, (header, _w, _p) in enumerate(columns)]
    # one space of padding each side of every column but the outer edges, and a divider between columns
    chrome = 3 * (len(columns) + 2) - 3
    room = max(0, width - chrome - seq_width)
    widths = [min(n, VALUE_WIDTH) for n in natural]
    wide = [i for i, n in enumerate(natural) if n > VALUE_WIDTH]  # long texts share what is left
    status_width = STATUS_WIDTH
    if any(item.error for item in rows):  # room for the error, after the columns' own (narrowest text) widths
        need = sum(w for i, w in enumerate(widths) if i not in wide) + MIN_TEXT_WIDTH * len(wide)
        status_width = max(STATUS_WIDTH, min(ERROR_WIDTH, room - need))
    budget = room - status_width
    if wide:
        rest = budget - sum(w for i, w in enumerate(widths) if i not in wide)
        for i in wide:
            widths[i] = max(MIN_TEXT_WIDTH, min(natural[i], rest // len(wide)))
    while sum(widths) > budget and max(widths, default=0) > 3:  # too many columns: narrow the widest
        # the long texts first (down to a few characters), so that short values (labels, scores) stay whole
        texts = [i for i in wide if widths[i] > MIN_NARROW_TEXT]
        widest = max(texts or range(len(widths)), key=widths.__getitem__)
        widths[widest] -= 1
    longest = max(len(item.status) + (len(" ".join(item.error.split())) + 2 if item.error else 0) for item in rows)
    status_width += max(0, min(budget - sum(widths), longest - status_width))  # room left: more of the errors
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("#", justify="right", no_wrap=True, min_width=seq_width)
    for index, ((header, _where, _path), column_width) in enumerate(zip(columns, widths, strict=True)):
        table.add_column(Text(header, overflow="ellipsis", no_wrap=True), no_wrap=True, overflow="ellipsis",
                         width=column_width, max_width=column_width,
                         justify="right" if _numeric([row[index] for row in raw]) else "left")
    table.add_column("status", no_wrap=True, overflow="ellipsis", min_width=STATUS_WIDTH, max_width=status_width)
    for item, row in zip(rows, cells, strict=True):
        style = {"succeeded": "green", "failed": "red"}.get(item.status, "yellow")
        status = Text(item.status if not item.error else f"{item.status}: {' '.join(item.error.split())}",
                      style=style)
        table.add_row(str(item.seq), *(Text(value) for value in row), status)
    return table


def _preview(store, registry, job_id: str, limit: int) -> None:
    if limit <= 0:
        return
    job = store.job(job_id)
    task_cls = registry.tasks.get(job.task)
    rows = list(store.iter_items(job_id, limit=limit))
    if not rows:
        return
    title = f"{job.task}: first {len(rows)} of {job.total} results"
    if len(title) > err.width:  # a narrow terminal: the task's name is on the bar's line already
        title = f"first {len(rows)} of {job.total} results"
    err.print(preview_table(task_cls, rows, title, err.width))
    if (job.options or {}).get("explain"):
        err.print(explanation_lines(rows, err.width, task_cls, plain=plain_marks(err)))


def quotable_field(task_cls: Any) -> str | None:
    """The input field whose text the CLI may quote next to an explanation: the task's text field, never a
    ``sensitive`` task's (its evidence points at PHI; the dashboard's "why" column follows the same rule)."""
    if task_cls is None or getattr(task_cls, "sensitive", False):
        return None
    return getattr(task_cls, "text_field", None) or None


def plain_marks(console: Any) -> bool:
    """Whether evidence is marked with ``[[...]]`` rather than a style: in a pipe or a file, with ``NO_COLOR``,
    on a ``TERM=dumb`` terminal or one without colours, so that nothing depends on styles being shown."""
    return (not console.is_terminal or console.no_color or console.is_dumb_terminal
            or console.color_system is None)


MARKED_SPANS = 5  # the strongest positive evidence spans marked in a quoted text (as the dashboard does)
MARK_STYLE = "bold reverse"


def evidence_spans(text: str, evidence: list[dict[str, Any]] | None, field: str,
                   limit: int = MARKED_SPANS) -> list[tuple[int, int]]:
    """The ``limit`` strongest evidence spans of ``text`` (the input field ``field``) with a positive weight,
    overlaps dropped (the stronger kept), in text order: the dashboard's ``evidenceSegments`` rule."""
    spans = [e for e in evidence or [] if isinstance(e, dict) and isinstance(e.get("start"), int)
             and isinstance(e.get("end"), int) and isinstance(e.get("weight"), int | float) and e["weight"] > 0
             and e.get("field") in (None, field) and 0 <= e["start"] < e["end"] <= len(text)]
    chosen: list[tuple[int, int]] = []
    for e in sorted(spans, key=lambda e: -e["weight"]):
        if len(chosen) >= limit:
            break
        if all(e["end"] <= start or end <= e["start"] for start, end in chosen):
            chosen.append((e["start"], e["end"]))
    return sorted(chosen)


def _windows(text: str, spans: list[tuple[int, int]], budget: int) -> list[tuple[int, int]]:
    """The stretches of ``text`` to show: all of it when it fits ``budget`` characters, else the marked spans
    with some context each side (cut between words), merged where they meet."""
    if len(text) <= budget:
        return [(0, len(text))]
    context = max(8, (budget - sum(end - start for start, end in spans)) // (2 * len(spans)) - 2)
    windows: list[list[int]] = []
    for start, end in spans:
        left, right = max(0, start - context), min(len(text), end + context)
        if left > 0:  # begin after a space, not inside a word
            space = text.find(" ", left, start)
            left = space + 1 if space >= 0 else start
        if right < len(text):  # end before a space
            space = text.rfind(" ", end, right)
            right = space if space >= 0 else end
        if windows and left <= windows[-1][1] + 1:
            windows[-1][1] = max(windows[-1][1], right)
        else:
            windows.append([left, right])
    return [(left, right) for left, right in windows]


def marked_quote(text: str, spans: list[tuple[int, int]], budget: int, plain: bool) -> Text:
    """``text`` on one logical line (whitespace collapsed) with ``spans`` marked: ``[[...]]`` when ``plain``,
    else in :data:`MARK_STYLE`; a text longer than ``budget`` characters shows the spans in context, the rest
    elided with ``…`` (and very long spans are cut a little after ``budget``)."""
    import re

    def flat(piece: str) -> str:
        return re.sub(r"\s+", " ", piece)

    quote = Text()
    windows = _windows(text, spans, budget)
    for number, (left, right) in enumerate(windows):
        quote.append(" … " if number else "… " if left > 0 else "")
        at = left
        for start, end in spans:
            if end <= left or start >= right:
                continue
            quote.append(flat(text[at:start]).lstrip() if at == left else flat(text[at:start]))
            mark = flat(text[start:end]).strip() or flat(text[start:end])
            quote.append(f"[[{mark}]]" if plain else mark, style=None if plain else MARK_STYLE)
            at = end
        quote.append(flat(text[at:right]).rstrip())
    if windows[-1][1] < len(text):
        quote.append(" …")
    if len(quote) > budget + budget // 4:  # very long marked spans
        quote.truncate(budget + budget // 4, overflow="ellipsis")
    return quote


def explanation_lines(rows: list[Any], width: int, task_cls: Any = None, plain: bool = True) -> Text:
    """``why #SEQ: summary`` for each previewed result with an explanation (the job option explain), wrapped
    between words at ``width`` with the continuation indented; under it, indented, the item's text with its
    strongest evidence spans marked (``[[...]]`` when ``plain``, else in a style), when the task has a text
    field that may be quoted (:func:`quotable_field`: never a sensitive task's) and the row has its input.
    A long text shows the marks in context (about three lines' worth). ``jobs results`` has all the evidence."""
    import io
    import textwrap

    from rich.console import Console

    field = quotable_field(task_cls)
    indent = "    "
    room = max(width, 20) - len(indent)
    wrapper = Console(width=room, file=io.StringIO(), color_system=None)
    lines = Text()
    for item in rows:
        if not item.explanation:
            continue
        line = f"why #{item.seq}: {' '.join(str(item.explanation.get('summary', '')).split())}"
        for part in textwrap.wrap(line, width=max(width, 20), subsequent_indent=indent, break_long_words=False,
                                  break_on_hyphens=False):
            lines.append(part + "\n")
        text = (getattr(item, "input", None) or {}).get(field) if field else None
        if field is None or not isinstance(text, str):
            continue
        spans = evidence_spans(text, item.explanation.get("evidence"), field)
        if not spans:
            continue
        quote = marked_quote(text, spans, budget=3 * room, plain=plain)
        for piece in quote.wrap(wrapper, room, overflow="fold"):
            piece.rstrip()
            lines.append(indent)
            lines.append_text(piece)
            lines.append("\n")
    lines.rstrip()
    return lines


# -- summaries ----------------------------------------------------------------------------------------------------

def _scalar(value: Any) -> bool:
    return value is None or (isinstance(value, str | int | float | bool)
                             and not (isinstance(value, str) and "\n" in value))


def _flat(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(_scalar(v) for v in value.values())


def _small_table(title: str | None, columns: list[str], values: list[list[Any]]) -> Table:
    """A summary table; ``values`` are its rows' raw values (numeric columns are right-aligned)."""
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, collapse_padding=True)
    for index, column in enumerate(columns):
        numeric = _numeric([row[index] for row in values])
        # underscores as spaces: a long header wraps between its words
        table.add_column(column.replace("_", " "), justify="right" if numeric else "left", overflow="fold")
    for row in values:
        table.add_row(*(Text(cell(value)) for value in row))
    return table


def summary_renderables(summary: dict[str, Any]) -> list[Any]:
    """The renderables (tables, lines) that show a job summary; see the module's docstring."""
    parts: list[Any] = []
    scalars = Table.grid(padding=(0, 2))
    scalars.add_column(style="bold", no_wrap=True)
    scalars.add_column(overflow="fold")
    done: set[str] = set()
    rows_tables = any(isinstance(v, list) and v and all(_flat(e) for e in v) for v in summary.values())
    # dicts of figures over the same keys go side by side (labels and shares: one row per label)
    flat_dicts = {key: value for key, value in summary.items() if _flat(value)}
    groups: list[list[str]] = []
    for key, value in flat_dicts.items():
        for group in groups:
            if list(flat_dicts[group[0]]) == list(value):
                group.append(key)
                break
        else:
            groups.append([key])
    for key, value in summary.items():
        if key in done:
            continue
        if _scalar(value):
            scalars.add_row(key, str(value) if isinstance(value, float) else cell(value))
        elif isinstance(value, str):  # several lines
            if not rows_tables:
                parts.append(Text(f"{key}:", style="bold"))
                parts.append(Text(value, no_wrap=True, overflow="ellipsis"))
        elif isinstance(value, list) and value and all(_scalar(entry) for entry in value):
            scalars.add_row(key, ", ".join(cell(entry) for entry in value))
        elif isinstance(value, list | dict) and not value:
            scalars.add_row(key, "—")
        elif _flat(value):
            group = next(g for g in groups if key in g)
            done.update(group)
            parts.append(_small_table(None, ["", *group],
                                      [[str(inner), *(summary[name][inner] for name in group)] for inner in value]))
        elif isinstance(value, dict) and all(_flat(v) for v in value.values()):
            names = list(dict.fromkeys(k for v in value.values() for k in v))
            parts.append(_small_table(key, ["", *names],
                                      [[str(outer), *(inner.get(name) for name in names)]
                                       for outer, inner in value.items()]))
        elif isinstance(value, list) and all(_flat(entry) for entry in value):
            names = list(dict.fromkeys(k for entry in value for k in entry))
            parts.append(_small_table(key, names, [[entry.get(name) for name in names] for entry in value]))
        else:
            parts.append(Text(f"{key}:", style="bold"))
            parts.append(Text(json.dumps(value, indent=2, default=str)))
    if scalars.row_count:
        parts.insert(0, scalars)
    return parts


def rate_text(items_per_s: float) -> str:
    """A job's speed in words: ``12.3 items/s``, or for long items (testgen, hints: under 0.1 items/s, which
    would print as ``0.0 items/s``) the time one item takes, ``2.3 min/item`` (``40 s/item`` under a minute)."""
    if items_per_s >= 0.1:
        return f"{items_per_s:,.1f} items/s"
    seconds = 1 / items_per_s
    return f"{seconds:.0f} s/item" if seconds < 60 else f"{seconds / 60:,.1f} min/item"


def _print_summary(store, job_id: str) -> dict[str, Any]:
    summary = store.summary(job_id)
    counts = summary["counts"]
    ran = counts.get("succeeded", 0) + counts.get("failed", 0)  # cancelled items never ran: not in the rate
    rate = ran / summary["elapsed_s"] if summary["elapsed_s"] and ran else None
    # the id stays whole on the first line, the figures on the next (a 32-character id and the figures make
    # more than 80 columns); narrower, each line breaks between its parts (_joined), never inside an id
    figures = [f"{counts.get('succeeded', 0)} succeeded,", f"{counts.get('failed', 0)} failed"
               + (f", {counts.get('cancelled', 0)} cancelled" if counts.get("cancelled") else "")]
    if rate:
        figures += [f"in {summary['elapsed_s']:.1f}s", f"({rate_text(rate)})"]
    err.print(_joined([f"job [bold]{summary['id']}[/bold]:", f"[bold]{summary['status']}[/bold]"]))
    err.print(_joined(["  " + figures[0], *figures[1:]], indent="    "))
    from verticals.core.jobs.usage import describe_job_usage

    used = describe_job_usage(summary["usage"]).split(" · ")  # 3,000 items · 41 s model time on cpu
    err.print(_joined(["  " + used[0], *("· " + part for part in used[1:])], indent="    "))
    artifact = store.get_artifact(job_id, "summary.json")
    if artifact:
        err.print("[bold]summary[/bold]")
        try:
            data = json.loads(artifact.content.decode())
        except ValueError:
            data = None
        if isinstance(data, dict):
            for part in summary_renderables(data):
                err.print(part)
        else:
            err.print_json(artifact.content.decode())
    return summary
