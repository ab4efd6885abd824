"""Lists that read at any width: a table when every cell fits whole, else one block of ``name: value`` lines per row.

Rich cuts a cell that does not fit its column (``finan…``, a key id that ``verticals keys revoke`` then cannot
use) or folds it letter by letter. Lists go through :func:`rows` instead:

- the **table** is used when every column gets its widest cell (ids, names, paths, numbers whole); *prose* columns
  (descriptions, notes, types) may wrap between words down to ``PROSE_MIN`` characters, never under their longest
  word (an environment variable, a path: folded, it could not be read or copied);
- otherwise each row is a **block**: its first cell on a line of its own (the name or id a later command takes),
  then ``  header: value`` lines. A value wraps between words; a token longer than the line (a path, an id) is
  printed whole, never cut or folded (a terminal folds it on screen; a copy, a pipe or a file keep it whole).

Data goes where the command sends it (``out``: stdout); the caller passes the console.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

PROSE_MIN = 20  # a prose column is not squeezed under this width (below it, blocks read better)


def _cell(value: Any) -> Text:
    if isinstance(value, Text):
        return value
    return Text.from_markup(value) if isinstance(value, str) and "[/" in value else Text(str(value))


def _longest_word(cells: Sequence[Text]) -> int:
    return max((len(word) for cell in cells for word in cell.plain.split()), default=0)


def _widest(header: str, cells: Sequence[Text]) -> int:
    """A column's width with every cell whole: its header or its longest cell."""
    return max([len(header), *(cell.cell_len for cell in cells)])


def _prose_width(header: str, cells: Sequence[Text]) -> int:
    """The least width a prose column gets: ``PROSE_MIN`` (or its header, or its longest word, if wider), and no
    more than its longest cell."""
    return min(_widest(header, cells), max(PROSE_MIN, len(header), _longest_word(cells)))


def fits(headers: Sequence[str], rows: Sequence[Sequence[Any]], width: int, prose: Sequence[str] = ()) -> bool:
    """Whether a table of these rows fits ``width`` with every non-prose cell whole (two spaces between columns)
    and every word of a prose cell whole."""
    widths = []
    for index, header in enumerate(headers):
        cells = [_cell(row[index]) for row in rows]
        widths.append(_prose_width(header, cells) if header in prose else _widest(header, cells))
    return sum(widths) + 2 * (len(headers) - 1) <= width


class Lines:
    """Lines laid out for a width already (blocks): printed one by one with ``soft_wrap`` so that the console
    neither wraps nor crops them (a token longer than the line stays whole)."""

    def __init__(self, lines: list[Text]):
        self.lines = lines

    def print(self, console: Console) -> None:
        for line in self.lines:
            console.print(line, soft_wrap=True)


def _wrapped(prefix: str, value: Text, width: int, indent: str) -> list[Text]:
    """``prefix`` + ``value`` broken between words at ``width``; a word longer than a line is kept whole."""
    lines: list[Text] = []
    current = Text(prefix)
    start = len(prefix)
    for word in value.split(" "):
        if not word.plain:
            continue
        if current.cell_len > start and current.cell_len + 1 + word.cell_len > width:
            lines.append(current)
            current, start = Text(indent), len(indent)
        if current.cell_len > start:
            current.append(" ")
        current.append_text(word)
    lines.append(current)
    return lines


def rows(headers: Sequence[str], values: Sequence[Sequence[Any]], width: int, prose: Sequence[str] = (),
         title: str | None = None) -> Table | Group | Lines:
    """``values`` under ``headers`` as a table, or as blocks when the table would cut a cell (see the module)."""
    if fits(headers, values, width, prose):
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        for index, header in enumerate(headers):
            if header in prose:
                cells = [_cell(row[index]) for row in values]  # prose columns share the width as their texts are long
                table.add_column(header, ratio=_widest(header, cells),
                                 min_width=min(_prose_width(header, cells), width), overflow="fold")
            else:
                table.add_column(header, no_wrap=True)
        for row in values:
            table.add_row(*(_cell(value) for value in row))
        # the title on a line of its own: as the table's title it wrapped to the table's width ("confusion (rows:
        # gold, columns:" / "predicted)" above a 37-column table at 80)
        return Group(Text(title, style="bold"), table) if title else table
    lines: list[Text] = [Text(title, style="bold")] if title else []
    for number, row in enumerate(values):
        if number or title:
            lines.append(Text(""))
        lines.append(Text(_cell(row[0]).plain, style="bold"))
        for header, value in zip(headers[1:], row[1:], strict=True):
            text = _cell(value)
            if text.plain:
                lines += _wrapped(f"  {header}: ", text, width, "    ")
    return Lines(lines)


def say(console: Console, markup: str, indent: str = "  ") -> None:
    """A message in console markup, broken between words at the console's width (continuation lines indented);
    a word longer than the line (a path, an id, a command's argument) is printed whole, never folded."""
    text = Text.from_markup(markup)
    lead = len(text.plain) - len(text.plain.lstrip(" "))
    for line in _wrapped(" " * lead, text[lead:], console.width, indent):
        console.print(line, soft_wrap=True)


def show(console: Console, renderable: Any) -> None:
    """Print a :func:`rows` result (or any renderable) on ``console``."""
    if isinstance(renderable, Lines):
        renderable.print(console)
    else:
        console.print(renderable)


def print_rows(console: Console, headers: Sequence[str], values: Sequence[Sequence[Any]],
               prose: Sequence[str] = (), title: str | None = None) -> None:
    """:func:`rows` at ``console``'s width, printed there."""
    show(console, rows(headers, values, console.width, prose, title))
