"""Rendering results and summaries for the terminal: the preview table of a job's first results and the
job summary. Everything here prints to stderr (``err``), so stdout stays data only."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from verticals.cli.common import err


def _preview(store, registry, job_id: str, limit: int) -> None:
    if limit <= 0:
        return
    job = store.job(job_id)
    task_cls = registry.tasks.get(job.task)
    show_text = task_cls is not None and task_cls.text_field and not task_cls.sensitive
    rows = list(store.iter_items(job_id, limit=limit))
    if not rows:
        return
    output_keys: list[str] = []
    for item in rows:
        for key, value in (item.output or {}).items():
            # an optional field left empty on every previewed row (e.g. entities not asked for) takes no column
            if (key not in output_keys and value is not None and not isinstance(value, dict | list)
                    and len(output_keys) < 4):
                output_keys.append(key)
    table = Table(title=f"{job.task}: first {len(rows)} of {job.total} results", title_justify="left")
    widths = {key: min(max(len(key), 9), 24) for key in output_keys}
    seq_width = len(str(rows[-1].seq))
    # output columns keep their width; the text column gets what is left of the terminal
    text_width = max(16, err.width - seq_width - sum(widths.values()) - 9 - 3 * (len(widths) + 3) - 1)
    table.add_column("#", justify="right", min_width=seq_width, no_wrap=True)
    if show_text:
        table.add_column(task_cls.text_field, overflow="ellipsis", no_wrap=True, max_width=text_width)
    for key, width in widths.items():
        table.add_column(key, no_wrap=True, overflow="ellipsis", min_width=width, max_width=24)
    table.add_column("status", no_wrap=True, min_width=9)
    for item in rows:
        cells = [str(item.seq)]
        if show_text:
            cells.append(str((item.input or {}).get(task_cls.text_field, "")))
        for key in output_keys:
            value = (item.output or {}).get(key)
            cells.append(f"{value:.3f}" if isinstance(value, float) else "" if value is None else str(value))
        style = {"succeeded": "green", "failed": "red"}.get(item.status, "yellow")
        cells.append(f"[{style}]{item.status}[/{style}]" if not item.error else f"[red]{item.error[:60]}[/red]")
        table.add_row(*cells)
    err.print(table)


def _print_summary(store, job_id: str) -> dict[str, Any]:
    summary = store.summary(job_id)
    counts = summary["counts"]
    rate = summary["done"] / summary["elapsed_s"] if summary["elapsed_s"] else None
    err.print(f"job [bold]{summary['id']}[/bold]: [bold]{summary['status']}[/bold] — "
              f"{counts.get('succeeded', 0)} succeeded, {counts.get('failed', 0)} failed"
              + (f", {counts.get('cancelled', 0)} cancelled" if counts.get("cancelled") else "")
              + (f" in {summary['elapsed_s']:.1f}s ({rate:,.1f} items/s)" if rate else ""))
    artifact = store.get_artifact(job_id, "summary.json")
    if artifact:
        err.print("[bold]summary[/bold]")
        err.print_json(artifact.content.decode())
    return summary
