"""The CLI's consoles and its two lowest-level ways to speak: one ``error:`` line (:func:`_fail`) and a message
broken between its parts on a narrow terminal (:func:`_joined`). Everything else in the CLI builds on these
(``common``, ``render``, ``signals`` import them; this module imports no other CLI module).

Data goes to stdout (``out``); progress, tables and messages go to stderr (``err``).
"""

from __future__ import annotations

import re
from typing import Any

import typer
from rich.console import Console
from rich.text import Text


class _Console(Console):
    """A console whose lines end where their text ends when it writes to a pipe or a file: Rich pads table rows,
    titles and the progress bar with spaces up to the width, which a terminal does not show but ``grep``, diffs
    and logs keep. A terminal gets Rich's output unchanged (live displays redraw over padded lines)."""

    def _render_buffer(self, buffer: Any) -> str:
        text = super()._render_buffer(buffer)
        return text if self.is_terminal else _PADDING.sub(r"\1", text)


_PADDING = re.compile(r" +(\n|$)")
err = _Console(stderr=True)
out = _Console()


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(Text("error: ", style="bold red") + Text(str(message)), soft_wrap=True)  # paths stay whole
    return typer.Exit(code)


def _joined(parts: list[str], console: Console | None = None, indent: str = "  ") -> str:
    """``parts`` (markup) joined by spaces while the line fits the console's width; a part that does not fit
    starts a line of its own, indented: a narrow terminal breaks a message between its parts, not inside one."""
    width = (console or err).width
    lines = [parts[0]]
    for part in parts[1:]:
        if Text.from_markup(lines[-1]).cell_len + 1 + Text.from_markup(part).cell_len <= width:
            lines[-1] += " " + part
        else:
            lines.append(indent + part)
    return "\n".join(lines)
