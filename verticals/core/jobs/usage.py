"""Usage: what jobs used, per job and per tenant and day, and what it cost by the operator's price table.

Metering (:mod:`verticals.core.models.metering`) times every model call of a batch; the batch's usage is added to the
job's ``job_usage`` rows in the transaction that writes its results (:meth:`Store.write_results`), so the figures are
exact: ``items`` counts the results the job's batches wrote (succeeded or failed; items refused at submission and
cancelled items never ran), ``model_s`` and ``tokens`` what each model on each device did for them, ``wall_s`` the
time the batches took (model loading excluded). Rows are kept when a job is deleted: a day's usage does not change.

Front ends read it here: ``verticals usage``, ``GET /v1/usage``, ``Client.usage`` and every job's summary line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import distinct, func, select

from verticals.config import settings
from verticals.core.jobs.engine import JobError
from verticals.core.store import Store
from verticals.core.store.repo import USAGE, fold_usage

__all__ = ["ALL_TENANTS", "UsageError", "cost", "describe_job_usage", "parse_day", "today", "usage_by_day",
           "usage_report"]

ALL_TENANTS: Any = object()  # usage_by_day(tenant=ALL_TENANTS): every tenant's (and the CLI's) usage


class UsageError(JobError):
    """A bad ``since`` / ``until`` value (a ``JobError``: exit 2 in the CLI, 422 over REST)."""


def today() -> date:
    return datetime.now(UTC).date()


def parse_day(value: str | date | None, default: date | None = None) -> date | None:
    """``2026-12-01``, an age before today (``7d``, ``2w``, ``0d``: today) or a date; ``UsageError`` otherwise."""
    if value is None or value == "":
        return default
    if isinstance(value, date):
        return value
    text = value.strip().lower()
    match = re.fullmatch(r"(\d{1,5})\s*([dw])", text)
    if match:
        days = int(match.group(1)) * (7 if match.group(2) == "w" else 1)
        return today() - timedelta(days=days)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"bad day {value!r}: use a date (2026-12-01) or an age such as 7d or 2w") from None


def cost(usage: Mapping[str, Any], prices: Mapping[str, float] | None = None) -> float | None:
    """The cost of ``usage`` (a job's, a day's) by the price table (``VERTICALS_PRICES``): each model second at its
    device kind's price, plus the items' price per 1,000. None when no price is set."""
    table = settings().price_table if prices is None else prices
    if not table:
        return None
    total = usage.get("items", 0) / 1000 * table.get("items_1k", 0.0)
    for entry in usage.get("models", ()):
        total += entry["model_s"] * table.get(str(entry["device"]).split(":")[0], 0.0)
    return round(total, 6)


def _seconds(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def describe_job_usage(usage: Mapping[str, Any]) -> str:
    """The summary line of a job's usage: ``3,000 items · 41.0 s model time on cpu`` (and its cost when priced)."""
    items = usage.get("items", 0)
    said = f"{items:,} item{'s' if items != 1 else ''}"
    devices = sorted({entry["device"] for entry in usage.get("models", ())})
    if devices:
        said += f" · {_seconds(usage.get('model_s', 0.0))} s model time on {', '.join(devices)}"
        if usage.get("tokens"):
            said += f" · {usage['tokens']:,} tokens"
    else:
        said += " · no model time"
    priced = cost(usage)
    if priced is not None:
        said += f" · {priced:.4f} {settings().price_currency}"
    return said


def usage_by_day(store: Store, tenant: Any = ALL_TENANTS, since: date | None = None,
                 until: date | None = None) -> list[dict[str, Any]]:
    """Usage summed per tenant and UTC day (``since`` and ``until`` included), oldest day first: ``day``,
    ``tenant`` (None: CLI / in-process jobs), ``jobs``, ``items``, ``wall_s``, ``model_s``, ``tokens``, ``models``
    (per model and device), ``cost`` (None without prices). ``tenant``: one tenant's (None: the CLI's)."""
    query = select(USAGE.c.tenant_id, USAGE.c.day, USAGE.c.model, USAGE.c.device, func.sum(USAGE.c.item_count),
                   func.sum(USAGE.c.tokens), func.sum(USAGE.c.calls), func.sum(USAGE.c.model_s),
                   func.sum(USAGE.c.wall_s), func.max(USAGE.c.peak_memory_bytes), func.count(distinct(USAGE.c.job_id)))
    query = query.where(*_filters(tenant, since, until))
    query = query.group_by(USAGE.c.tenant_id, USAGE.c.day, USAGE.c.model, USAGE.c.device)
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    groups: dict[tuple[str, str], list[Any]] = {}
    jobs: dict[tuple[str, str], int] = {}
    tenants: dict[tuple[str, str], str | None] = {}
    for row in rows:
        key = (row[0] or "", row[1])
        tenants[key] = row[0]
        groups.setdefault(key, []).append(row[2:10])
        if not row[2]:  # the job rows: one per job and day
            jobs[key] = int(row[10])
    out = []
    for key in sorted(groups, key=lambda k: (k[1], k[0])):
        usage = fold_usage(groups[key])
        out.append({"day": key[1], "tenant": tenants[key], "jobs": jobs.get(key, 0), **usage, "cost": cost(usage)})
    return out


def _filters(tenant: Any, since: date | None, until: date | None) -> list[Any]:
    conditions = []
    if tenant is not ALL_TENANTS:
        conditions.append(USAGE.c.tenant_id.is_(None) if tenant is None else USAGE.c.tenant_id == tenant)
    if since is not None:
        conditions.append(USAGE.c.day >= since.isoformat())
    if until is not None:
        conditions.append(USAGE.c.day <= until.isoformat())
    return conditions


def usage_report(store: Store, tenant: Any = ALL_TENANTS, since: date | None = None,
                 until: date | None = None) -> dict[str, Any]:
    """``usage_by_day`` with its total: ``{"since", "until", "currency", "days": [...], "total": {...}}``
    (``currency`` None without prices)."""
    if since is not None and until is not None and since > until:
        raise UsageError(f"since ({since}) is after until ({until})")
    days = usage_by_day(store, tenant, since, until)
    models: dict[tuple[str, str], dict[str, Any]] = {}
    for day in days:
        for entry in day["models"]:
            total = models.setdefault((entry["model"], entry["device"]), {**entry, "model_s": 0.0, "tokens": 0,
                                                                          "calls": 0, "peak_memory_bytes": None})
            total["model_s"] += entry["model_s"]
            total["tokens"] += entry["tokens"]
            total["calls"] += entry["calls"]
            if entry["peak_memory_bytes"] is not None:
                total["peak_memory_bytes"] = max(total["peak_memory_bytes"] or 0, entry["peak_memory_bytes"])
    with store.engine.connect() as connection:  # a job metered on two days counts once in the total
        jobs = connection.scalar(select(func.count(distinct(USAGE.c.job_id))).where(
            USAGE.c.model == "", *_filters(tenant, since, until))) or 0
    total = {"jobs": int(jobs), "items": sum(d["items"] for d in days),
             "wall_s": sum(d["wall_s"] for d in days), "model_s": sum(d["model_s"] for d in days),
             "tokens": sum(d["tokens"] for d in days),
             "models": sorted(models.values(), key=lambda e: (-e["model_s"], e["model"], e["device"]))}
    total["cost"] = cost(total)
    return {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None,
            "currency": settings().price_currency if settings().price_table else None, "days": days, "total": total}
