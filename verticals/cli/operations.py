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


tenants_app = typer.Typer(help="Tenants of the REST API: their quotas and what they use today.", no_args_is_help=True)
quota_app = typer.Typer(help="The operator's quotas of a tenant: concurrent jobs, items and model seconds a day.",
                        no_args_is_help=True)
tenants_app.add_typer(quota_app, name="quota")

QUOTA_OPTIONS = {"active_jobs": "max_active_jobs", "items_per_day": "items_per_day",
                 "model_seconds_per_day": "model_seconds_per_day"}


def _limit(value: str | None, option: str, integer: bool) -> float | int | None:
    """An option's value: a number >= 0, or ``none`` (remove the limit)."""
    from verticals.cli.common import UserError

    assert value is not None
    if value.strip().lower() in ("none", "-", "off"):
        return None
    try:
        number: float | int = int(value) if integer else float(value)
    except ValueError:
        raise UserError(f"bad {option} {value!r}: use a{'n integer' if integer else ' number'} >= 0, or none to "
                        "remove the limit") from None
    if not number >= 0 or number == float("inf"):
        raise UserError(f"bad {option} {value!r}: use a number >= 0 (0: no job may start), or none")
    return number


@quota_app.command("set")
def quota_set(
    tenant: Annotated[str, typer.Argument(help="Tenant name.")],
    active_jobs: Annotated[str | None, typer.Option(
        "--active-jobs", help="Unfinished jobs it may have at once (none: VERTICALS_API_MAX_ACTIVE_JOBS).")] = None,
    items_per_day: Annotated[str | None, typer.Option(
        "--items-per-day", help="Items its jobs may run in a UTC day, pending ones included (none: no limit).")] = None,
    model_seconds_per_day: Annotated[str | None, typer.Option(
        "--model-seconds-per-day", help="Model seconds a UTC day; past them it starts no new job (none: no limit).")
    ] = None,
) -> None:
    """Set a tenant's quotas (the options given; `none` removes one). Past one, job creation answers 429."""
    from verticals.cli.common import UserError
    from verticals.cli.serve import _tenants

    given = {"--active-jobs": active_jobs, "--items-per-day": items_per_day,
             "--model-seconds-per-day": model_seconds_per_day}
    try:
        if all(value is None for value in given.values()):
            raise UserError("name at least one quota: --active-jobs, --items-per-day or --model-seconds-per-day "
                            "(a number, or none to remove it)")
        limits = {field: _limit(value, option, integer=field != "model_seconds_per_day")
                  for (option, value), field in zip(given.items(), QUOTA_OPTIONS.values(), strict=True)
                  if value is not None}
        quota = _tenants().set_quota(tenant, **limits)
    except Exception as error:
        raise _handle(error) from None
    err.print(f"quota of tenant {tenant}: {_describe_quota(quota)}")


@quota_app.command("clear")
def quota_clear(tenant: Annotated[str, typer.Argument(help="Tenant name.")]) -> None:
    """Remove every quota of a tenant (the server's defaults apply again)."""
    from verticals.cli.serve import _tenants

    try:
        quota = _tenants().set_quota(tenant, **{field: None for field in QUOTA_OPTIONS.values()})
    except Exception as error:
        raise _handle(error) from None
    err.print(f"quota of tenant {tenant}: {_describe_quota(quota)}")


def _describe_quota(quota: Any) -> str:
    from verticals.config import settings

    parts = [f"{quota.max_active_jobs if quota.max_active_jobs is not None else settings().api_max_active_jobs} "
             f"active jobs{'' if quota.max_active_jobs is not None else ' (the server default)'}",
             f"{quota.items_per_day:,} items a day" if quota.items_per_day is not None else "items a day: no limit",
             f"{quota.model_seconds_per_day:g} model seconds a day" if quota.model_seconds_per_day is not None
             else "model seconds a day: no limit"]
    return ", ".join(parts)


@tenants_app.command("list")
def tenants_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False) -> None:
    """Every tenant: its quotas, its unfinished jobs and what its jobs used today (UTC)."""
    from sqlalchemy import func, select

    from verticals.cli.serve import _tenants
    from verticals.core.jobs.usage import today, usage_by_day
    from verticals.core.store.tables import Job
    from verticals.tenancy.quotas import Quotas

    try:
        tenants = _tenants()
        store = tenants.store
        from verticals.config import settings

        quotas = Quotas.from_settings(store, settings())
        used = {day["tenant"]: day for day in usage_by_day(store, since=today())}
        with store.session() as session:
            active = dict(session.execute(select(Job.tenant_id, func.count()).where(
                Job.tenant_id.is_not(None), Job.finished_at.is_(None)).group_by(Job.tenant_id)).all())
        rows = []
        for name in tenants.list_tenants():
            limits = quotas.limits(name)
            today_use = used.get(name) or {"items": 0, "model_s": 0.0}
            rows.append({"tenant": name, "active_jobs": int(active.get(name, 0)),
                         "max_active_jobs": limits.max_active_jobs, "items_today": today_use["items"],
                         "items_per_day": limits.items_per_day, "model_s_today": today_use["model_s"],
                         "model_seconds_per_day": limits.model_seconds_per_day})
    except Exception as error:
        raise _handle(error) from None
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    if not rows:
        err.print("no tenants yet: create one with its first key, `verticals keys create --tenant NAME --name KEY`")
        return

    def of(value: Any, limit: Any, fmt: str = "{:,}") -> str:
        return fmt.format(value) + (" / " + fmt.format(limit) if limit is not None else "")

    print_rows(out, ("tenant", "active jobs", "items today", "model s today"),
               [(row["tenant"], of(row["active_jobs"], row["max_active_jobs"]),
                 of(row["items_today"], row["items_per_day"]),
                 of(row["model_s_today"], row["model_seconds_per_day"], "{:,.1f}")) for row in rows],
               title="tenants (used / quota)")


def workers(as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False) -> None:
    """The live worker processes (their queues, the chunk each runs, its models and devices, its last heartbeat)
    and the backlog of each queue, as the workers report themselves in the broker (VERTICALS_BROKER_URL)."""
    from verticals.cli.common import UserError
    from verticals.config import broker_url

    try:
        url = broker_url()
        if not url:
            raise UserError("no fleet: VERTICALS_BROKER_URL is not set, so jobs run in the process that starts them "
                            "(set it to the broker the workers use, e.g. redis://127.0.0.1:6379/0)")
        from verticals.workers.fleet_view import snapshot

        try:
            fleet = snapshot(url)
        except ValueError as error:
            raise UserError(str(error)) from None
        except Exception as error:
            raise UserError(f"cannot reach the broker ({type(error).__name__}): is it running at the address "
                            "VERTICALS_BROKER_URL names?") from None
    except Exception as error:
        raise _handle(error) from None
    if as_json:
        sys.stdout.write(json.dumps(fleet) + "\n")
        return
    backlog = ", ".join(f"{queue} {count if count is not None else '?'}" for queue, count in fleet["queues"].items())
    if not fleet["workers"]:
        err.print(f"no live worker (start one with `verticals worker`); waiting in the queues: {backlog}")
        return
    rows = []
    for worker in fleet["workers"]:
        chunk = worker.get("chunk")
        doing = (f"job {chunk['job_id'][:12]} items {chunk['start']}-{chunk['end'] - 1} for "
                 f"{chunk['running_s']:.0f}s" if chunk else "starting" if worker.get("starting")
                 else f"idle ({worker.get('chunks_done', 0)} chunks done)")
        models = ", ".join(f"{m['model']} on {m['device']}" for m in worker.get("models") or []) or "none loaded"
        rows.append((f"{worker['node']} pid {worker['pid']}", ", ".join(worker.get("queues") or []) or "-", doing,
                     models, f"{worker['age_s']:.1f}s ago"))
    print_rows(out, ("worker", "queues", "running", "models", "heard"), rows, prose=("running", "models"),
               title=f"{len(rows)} worker process(es); waiting in the queues: {backlog}")


def register(app: typer.Typer) -> None:
    app.command("usage")(usage)
    app.command("workers")(workers)
    app.add_typer(tenants_app, name="tenants")

