"""Line and branch coverage of one file from executed arcs (coverage.py's parser, branch mode)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from coverage.python import PythonParser


@dataclass(frozen=True)
class Static:
    statements: frozenset[int]
    branch_arcs: frozenset[tuple[int, int]]  # possible arcs leaving a line with 2+ exits

    @property
    def branch_lines(self) -> set[int]:
        return {a for a, _ in self.branch_arcs}


class FileAnalysis:
    """Static structure of a source file plus helpers to measure executed arcs against it."""

    def __init__(self, filename: str, source: str | None = None):
        self.parser = PythonParser(text=source, filename=filename)
        self.parser.parse_source()
        statements = frozenset(self.parser.statements - self.parser.excluded)
        exits = self.parser.exit_counts()
        branch_arcs = frozenset((a, b) for a, b in self.parser.arcs() if exits.get(a, 0) > 1)
        self.static = Static(statements, branch_arcs)

    def normalise(self, arcs: Iterable[Iterable[int]]) -> tuple[set[int], set[tuple[int, int]]]:
        """(executed statement lines, executed branch arcs) from raw arcs."""
        raw = [(a, b) for a, b in (tuple(arc) for arc in arcs)]
        translated = self.parser.translate_arcs(raw)
        lines = {line for arc in translated for line in arc if line > 0} & self.static.statements
        branches = set(translated) & self.static.branch_arcs
        return lines, branches

    def summary(self, lines: set[int], branches: set[tuple[int, int]]) -> dict:
        n_lines, n_branches = len(self.static.statements), len(self.static.branch_arcs)
        covered_lines, covered_branches = len(lines & self.static.statements), len(branches)
        total = n_lines + n_branches
        return {
            "lines_covered": covered_lines,
            "lines_total": n_lines,
            "line_percent": round(100.0 * covered_lines / n_lines, 1) if n_lines else 100.0,
            "branches_covered": covered_branches,
            "branches_total": n_branches,
            "branch_percent": round(100.0 * covered_branches / n_branches, 1) if n_branches else 100.0,
            # coverage.py's own "total" figure: (statements + branches) covered / (statements + branches)
            "percent": round(100.0 * (covered_lines + covered_branches) / total, 1) if total else 100.0,
        }

    def uncovered(self, lines: set[int], branches: set[tuple[int, int]]) -> tuple[list[int], list[str]]:
        missing_lines = sorted(self.static.statements - lines)
        missing_branches = sorted(self.static.branch_arcs - branches)
        return missing_lines, [f"{a}->{b if b > 0 else 'exit'}" for a, b in missing_branches]
