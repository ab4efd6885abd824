"""``verticals eval``: score a task on labelled data, list/show/compare stored runs, quality gates, HTML report."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Annotated, Any

import typer

EXIT_GATE_FAILED = 3

HELP = """Score TASK on labelled DATA (default: the task's golden set) and store the run.

\b
  verticals eval TASK [DATA] [--gold-column COL] [--min METRIC=VALUE ...] [--report report.html]
  verticals eval list [TASK]
  verticals eval show RUN            metrics, per-class figures, the items it got wrong
  verticals eval compare RUN_A RUN_B metric deltas and the items whose prediction changed

The task runs as an ordinary job (same batching and provenance as `verticals run`); each output is
compared with the gold column by the task's evaluator. --min gates exit with code 3 when a metric is
below its minimum (for CI pipelines).
"""


def register(app: typer.Typer) -> None:
    @app.command("eval", help=HELP, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def eval_command(
        ctx: typer.Context,
        args: Annotated[list[str] | None, typer.Argument(
            help="TASK [DATA] | list [TASK] | show RUN | compare RUN_A RUN_B", show_default=False)] = None,
        gold_column: Annotated[str | None, typer.Option(
            help="Input column with the gold value (default: the evaluator's, e.g. label).")] = None,
        text_column: Annotated[str | None, typer.Option(help="Column holding the task's text field.")] = None,
        field: Annotated[list[str], typer.Option("--field", help="Map FIELD=COLUMN (repeatable).")] = [],  # noqa: B006
        param: Annotated[list[str], typer.Option("--param", "-p", help="Task parameter NAME=VALUE.")] = [],  # noqa: B006
        model: Annotated[list[str], typer.Option(
            "--model", help="Use SPEC=PATH_OR_HUB_ID for this run (like VERTICALS_MODELS).")] = [],  # noqa: B006
        minimum: Annotated[list[str], typer.Option(
            "--min", help="Quality gate METRIC=MINIMUM (repeatable); exit code 3 when one fails.")] = [],  # noqa: B006
        report: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report here.")] = None,
        format: Annotated[str | None, typer.Option(help="Input format when the extension does not tell.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON on stdout.")] = False,
        explain: Annotated[bool, typer.Option(
            "--explain", help="Store each result's explanation; `eval show RUN` prints why each wrong item "
                              "was predicted as it was (tasks that explain).")] = False,
        limit: Annotated[int, typer.Option(help="Rows to list (wrong items for show, flips for compare).")] = 20,
    ) -> None:
        from verticals.cli.common import _coerce, _extra_params, _handle, _parse_pairs, err, out

        words = list(args or [])
        extra = list(ctx.args)
        for index, word in enumerate(words):  # task parameters (--NAME VALUE) may land in the variadic argument
            if word.startswith("--"):
                words, extra = words[:index], words[index:] + extra
                break
        try:
            if not words:
                err.print(HELP)
                raise typer.Exit(2)
            command = words[0]
            if command == "list":
                _list(words[1] if len(words) > 1 else None, limit, as_json)
                return
            if command == "show":
                _need(words, 2, "verticals eval show RUN")
                _show(words[1], limit, as_json)
                return
            if command == "compare":
                _need(words, 3, "verticals eval compare RUN_A RUN_B")
                _compare(words[1], words[2], limit, as_json)
                return
            if len(words) > 2:
                raise _usage(f"unexpected argument {words[2]!r}")
            from verticals.cli.common import _service
            from verticals.core.evaluation.scoring import evaluate, gate_failures, parse_gates

            gates = parse_gates(minimum)
            params = {**_extra_params(extra),
                      **{k: _coerce(v) for k, v in _parse_pairs(param, "--param").items()}}
            result = _run_with_progress(lambda progress: evaluate(
                command, words[1] if len(words) > 1 else None, gold=gold_column,
                fields=_parse_pairs(field, "--field"), text_column=text_column, params=params,
                overrides=_parse_pairs(model, "--model"), fmt=format, on_progress=progress,
                service=_service(), explain=explain), command)
            if as_json:
                out.print_json(json.dumps(result.as_dict()))
            else:
                _print_result(result, limit)
            if report is not None:
                write_report(result, report)
                err.print(f"report written to [bold]{report}[/bold]")
            failures = gate_failures(result.metrics, gates)
            if failures:
                for failure in failures:
                    err.print(f"[bold red]gate failed:[/bold red] {failure}")
                raise typer.Exit(EXIT_GATE_FAILED)
            if gates:
                err.print(f"[green]all {len(gates)} gate(s) passed[/green]")
        except KeyboardInterrupt as error:  # Ctrl-C, kill -INT, kill: verticals.cli.signals
            from verticals.cli.signals import describe, fail

            raise fail(f"{describe(error)}: nothing was scored or stored; run the evaluation again", error) from None
        except Exception as error:
            from verticals.core.evaluation.scoring import EvalError

            if isinstance(error, EvalError):
                from verticals.cli.common import _fail

                raise _fail(str(error)) from None
            raise _handle(error) from None


def _usage(message: str) -> Exception:
    from verticals.cli.common import UserError

    return UserError(message)


def _need(words: list[str], count: int, usage: str) -> None:
    if len(words) != count:
        raise _usage(f"usage: {usage}")


def _run_with_progress(call, task: str):
    from verticals.cli.common import _progress

    with _progress() as progress:
        bar = progress.add_task(f"eval {task}", total=None)

        def advance(n: int) -> None:
            progress.advance(bar, n)

        result = call(advance)
        progress.update(bar, total=len(result.records), completed=len(result.records))
    return result


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4f}"
    return str(value)


def _print_result(result, limit: int) -> None:
    """The run's metrics, per-class figures and confusion matrix: data, on stdout (``| less`` gets them)."""
    from verticals.cli.common import out
    from verticals.cli.listing import print_rows, say

    say(out, f"[bold]{result.task}[/bold] on {result.data_name}: eval run {(result.run_id or '')[:8]}")
    about = _golden_note(result)
    if about:
        say(out, f"[dim]{about}[/dim]", indent="  ")
    print_rows(out, ("metric", "value"),
               [(f"[bold]{name}[/bold]" if name == result.main_metric else name, _fmt(value))
                for name, value in result.metrics.items()])
    per_class = result.details.get("per_class") or {}
    if per_class:
        columns = list(next(iter(per_class.values())).keys())
        out.print()
        print_rows(out, ("class", *columns),
                   [(str(label), *(_fmt(values.get(c)) for c in columns)) for label, values in per_class.items()],
                   title="per class")
    confusion = result.details.get("confusion")
    if confusion:
        out.print()
        print_rows(out, ("gold", *(str(c) for c in confusion["columns"])),
                   [(str(label), *(str(v) for v in row))
                    for label, row in zip(confusion["labels"], confusion["rows"], strict=True)],
                   title="confusion (rows: gold, columns: predicted)")
    models = ", ".join(f"{m.get('model')} ({m.get('source')} {m.get('reference')}"
                       + (f" @ {m['revision']}" if m.get("revision") else "")
                       + (f", {m['runtime']} {m.get('precision', '')}".rstrip() if m.get("runtime") else "") + ")"
                       for m in result.models)
    say(out, f"[dim]models: {models or 'none recorded'}; data sha256 {result.data_hash[:12]}; "
             f"job {result.job_id[:8]}[/dim]")


def _golden_note(result) -> str | None:
    """How the task's shipped golden set was made (its README's first paragraph), for a run on it: a reader of
    the figures should know what they measure (an evaluation set written for the plugin, never trained on)."""
    if not str(result.data_name).startswith("golden:"):
        return None
    from verticals.cli.common import _registry
    from verticals.core.evaluation.scoring import golden_about

    task_cls = _registry().tasks.get(result.task)
    about = golden_about(task_cls) if task_cls is not None else None
    return f"golden set: {about}" if about else None


def _list(task: str | None, limit: int, as_json: bool) -> None:
    from verticals.cli.common import _store, err, out
    from verticals.cli.listing import print_rows
    from verticals.core.evaluation.runs import list_runs

    runs = list_runs(_store(), task, limit)
    if as_json:
        out.print_json(json.dumps([{"id": r.id, "task": r.task, "created_at": r.created_at.isoformat(),
                                    "data": r.data_name, "metrics": r.metrics} for r in runs]))
        return
    if not runs:
        err.print("no evaluation runs yet: `verticals eval TASK [DATA]`")
        return
    rows = []
    for run in runs:
        main = run.evaluator.get("main_metric", "accuracy")
        rows.append((run.id[:8], run.created_at.strftime("%Y-%m-%d %H:%M"), run.task, run.data_name,
                     str(run.n_items), f"{main} {_fmt(run.metrics.get(main))}"))
    print_rows(out, ("run", "when", "task", "data", "n", "main metric"), rows, title="evaluation runs")


def _load(run_id: str):
    from verticals.cli.common import _store
    from verticals.core.evaluation.runs import get_run
    from verticals.core.evaluation.scoring import run_to_result

    return run_to_result(get_run(_store(), run_id))


def _show(run_id: str, limit: int, as_json: bool) -> None:
    from verticals.cli.common import _registry, _store, out
    from verticals.cli.listing import print_rows

    result = _load(run_id)
    if as_json:
        out.print_json(json.dumps(result.as_dict(records=True)))
        return
    _print_result(result, limit)
    wrong = [r for r in result.records if r[4] or r[2] != r[3]][:limit]
    if not wrong or result.evaluator.get("kind") != "classification":
        return
    from verticals.cli.render import quotable_field

    task_cls = _registry().tasks.get(result.task)
    field = quotable_field(task_cls)  # the text, never a sensitive task's
    show_text = field is not None
    inputs, why = {}, {}
    seqs = {r[1] for r in wrong}
    for item in _store().iter_items(result.job_id):  # the texts (not of a sensitive task) and explanations
        if item.seq in seqs:
            if field is not None:
                inputs[item.seq] = " ".join(str((item.input or {}).get(field, "")).split())
            if item.explanation:  # evaluated with --explain
                why[item.seq] = _Why(item.seq, item.explanation, item.input if field is not None else None)
    headers = ("#", *([field] if field is not None else []), "gold", "predicted")
    out.print()
    print_rows(out, headers, [(str(seq), *([inputs.get(seq, "")] if show_text else []), str(gold),
                               "(failed)" if failed else str(predicted))
                              for _key, seq, gold, predicted, failed in wrong],
               prose=headers[1:2] if show_text else (), title=f"wrong: first {len(wrong)}")
    if why:
        from verticals.cli.render import explanation_lines, plain_marks

        out.print()
        out.print(explanation_lines([why[seq] for _k, seq, *_ in wrong if seq in why], out.width, task_cls,
                                    plain=plain_marks(out)))


class _Why:
    """A wrong item's explanation (and its input, unless the task is sensitive), as
    :func:`verticals.cli.render.explanation_lines` reads rows."""

    def __init__(self, seq: int, explanation: dict[str, Any], input: dict[str, Any] | None = None):
        self.seq, self.explanation, self.input = seq, explanation, input


def _compare(a_id: str, b_id: str, limit: int, as_json: bool) -> None:
    from verticals.cli.common import err, out
    from verticals.cli.listing import print_rows, say
    from verticals.core.evaluation.scoring import compare

    a, b = _load(a_id), _load(b_id)
    diff = compare(a, b)
    if as_json:
        out.print_json(json.dumps(diff))
        return
    if a.task != b.task:
        err.print(f"[yellow]note: the runs are of different tasks ({a.task}, {b.task})[/yellow]")
    if not diff["same_data"]:
        err.print(f"[yellow]note: different data ({a.data_name} vs {b.data_name}); "
                  f"{diff['matched']} items matched by content[/yellow]")
    rows = []
    for name, values in diff["metrics"].items():
        delta = values["delta"]
        colour = "green" if delta > 0 else "red" if delta < 0 else ""
        shown = f"[{colour}]{delta:+.4f}[/{colour}]" if colour else f"{delta:+.4f}"
        rows.append((name, _fmt(values["a"]), _fmt(values["b"]), shown))
    print_rows(out, ("metric", "a", "b", "delta"), rows,
               title=f"{(a.run_id or '')[:8]} -> {(b.run_id or '')[:8]}")
    flipped = diff["flipped"]
    fixed = sum(1 for f in flipped if f["fixed"])
    broken = sum(1 for f in flipped if f["broken"])
    say(out, f"{len(flipped)} item(s) changed prediction: {fixed} fixed, {broken} broken, "
             f"{len(flipped) - fixed - broken} wrong both times")
    if flipped:
        print_rows(out, ("# (b)", "gold", "a", "b", "change"),
                   [(str(flip["seq_b"]), str(flip["gold"]), str(flip["a"]), str(flip["b"]),
                     "[green]fixed[/green]" if flip["fixed"] else "[red]broken[/red]" if flip["broken"] else "")
                    for flip in flipped[:limit]],
                   title=f"changed: first {min(limit, len(flipped))}")


def write_report(result, path: Path) -> None:
    """A self-contained HTML page: metrics, per-class table and the confusion matrix as an inline SVG heatmap."""
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(name)}</td><td>{esc(_fmt(value))}</td></tr>"
                   for name, value in result.metrics.items())
    per_class = result.details.get("per_class") or {}
    class_html = ""
    if per_class:
        columns = list(next(iter(per_class.values())).keys())
        class_html = ("<h2>Per class</h2><table><tr><th>class</th>" + "".join(f"<th>{esc(c)}</th>" for c in columns)
                      + "</tr>" + "".join(f"<tr><td>{esc(str(label))}</td>"
                                          + "".join(f"<td>{esc(_fmt(v.get(c)))}</td>" for c in columns) + "</tr>"
                                          for label, v in per_class.items()) + "</table>")
    svg = _confusion_svg(result.details.get("confusion"))
    models = "".join(f"<li>{esc(json.dumps(m, sort_keys=True))}</li>" for m in result.models)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>verticals eval {esc(result.task)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style>
</head><body>
<h1>{esc(result.task)}</h1>
<p>Run <code>{esc(result.run_id or "")}</code> on <code>{esc(result.data_name)}</code>
(sha256 <code>{esc(result.data_hash[:16])}</code>), gold field <code>{esc(result.gold_field)}</code>,
evaluator {esc(result.evaluator.get("kind", ""))}; job <code>{esc(result.job_id)}</code>.</p>
<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>{rows}</table>
{class_html}
{"<h2>Confusion matrix</h2>" + svg if svg else ""}
<h2>Models</h2><ul>{models or "<li>none recorded</li>"}</ul>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


def _confusion_svg(confusion: dict[str, Any] | None) -> str:
    if not confusion:
        return ""
    labels, columns, rows = confusion["labels"], confusion["columns"], confusion["rows"]
    cell, left, top = 64, 110, 90
    peak = max((max(row) for row in rows if row), default=1) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + cell * len(columns) + 20}" '
             f'height="{top + cell * len(labels) + 20}" font-family="sans-serif" font-size="12">',
             f'<text x="{left}" y="20">predicted →</text><text x="4" y="{top - 8}">gold ↓</text>']
    for j, column in enumerate(columns):
        x = left + j * cell + cell / 2
        parts.append(f'<text x="{x}" y="{top - 10}" text-anchor="middle">{html.escape(str(column))}</text>')
    for i, (label, row) in enumerate(zip(labels, rows, strict=True)):
        y = top + i * cell
        parts.append(f'<text x="{left - 8}" y="{y + cell / 2 + 4}" text-anchor="end">{html.escape(str(label))}</text>')
        for j, value in enumerate(row):
            shade = int(255 - 200 * value / peak)
            colour = f"rgb({shade},{shade},255)" if labels[i] == columns[j] else f"rgb(255,{shade},{shade})"
            x = left + j * cell
            parts.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{colour}"/>'
                         f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)
