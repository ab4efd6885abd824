"""``verticals usage`` (what each tenant used, per day, and its cost) and ``verticals tenants ...`` (their quotas).

Registered by :func:`verticals.cli.main`; docs/operations.md describes running the platform for several teams.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from verticals.cli.common import _handle, _store, err, out
from verticals.cli.listing import print_rows


def usage(
    tenant: Annotated[str | None, typer.Option(
        help="Only this tenant's usage ('-': the CLI's and the in-process SDK's jobs, which have no tenant).")] = None,
    since: Annotated[str, typer.Option(help="First day: a date (2026-12-01) or an age (7d, 2w; 0d: today).")] = "30d",
    until: Annotated[str | None, typer.Option(help="Last day (default: today).")] = None,
    models: Annotated[bool, typer.Option("--models", help="One row per model and device too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """What jobs used, per tenant and UTC day: items, model seconds, tokens, wall seconds and cost."""
    from verticals.core.jobs.usage import ALL_TENANTS, parse_day, usage_report

    try:
        chosen: Any = ALL_TENANTS if tenant is None else None if tenant == "-" else tenant
        report = usage_report(_store(), chosen, parse_day(since), parse_day(until))
    except Exception as error:
        raise _handle(error) from None
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    if not report["days"]:
        err.print(f"no usage {_range(report)}" + (f" for tenant {tenant}" if tenant else "")
                  + ": jobs are metered as their batches run")
        return
    priced = report["currency"] is not None
    headers = ["day", "tenant", "jobs", "items", "model s", "tokens", "wall s"] + (["cost"] if priced else [])
    rows = []
    for day in report["days"]:
        rows.append(_row(day["day"], day["tenant"], day, priced))
        if models:
            for entry in day["models"]:
                rows.append(["", f"  {entry['model']} on {entry['device']}", "", "", f"{entry['model_s']:,.1f}",
                             f"{entry['tokens']:,}", ""] + ([""] if priced else []))
    rows.append(_row("total", "", report["total"], priced))
    print_rows(out, headers, rows, title=f"usage {_range(report)}" + (f" ({report['currency']})" if priced else ""))


def _row(day: str, tenant: str | None, usage: dict[str, Any], priced: bool) -> list[str]:
    row = [day, "-" if tenant is None else tenant, f"{usage['jobs']:,}", f"{usage['items']:,}",
           f"{usage['model_s']:,.1f}", f"{usage['tokens']:,}", f"{usage['wall_s']:,.1f}"]
    return row + ([f"{usage['cost']:,.4f}"] if priced else [])


def _range(report: dict[str, Any]) -> str:
    return f"from {report['since'] or 'the start'} to {report['until'] or 'today'}"


def register(app: typer.Typer) -> None:
    app.command("usage")(usage)

