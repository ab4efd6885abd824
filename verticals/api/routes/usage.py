"""``GET /v1/usage``: what the caller's tenant used, per UTC day, and its cost (docs/operations.md)."""

from typing import Annotated

from fastapi import APIRouter, Query

from verticals.api.deps import ERRORS, State, Who
from verticals.api.schemas import ErrorOut, UsageReportOut

router = APIRouter()

Day = Annotated[str | None, Query(max_length=10, description="A UTC day, YYYY-MM-DD, or an age such as 7d")]


@router.get("/v1/usage", response_model=UsageReportOut, tags=["usage"], responses={**ERRORS, 422: {"model": ErrorOut}})
def usage(who: Who, state: State, since: Day = "30d", until: Day = None) -> UsageReportOut:
    """Your tenant's usage per UTC day (``since`` and ``until`` included; default: the last 30 days): jobs, items,
    model seconds and tokens per model and device, wall seconds, and their cost by the operator's price table."""
    from verticals.core.jobs.usage import parse_day, usage_report

    report = usage_report(state.store, who.tenant, parse_day(since), parse_day(until))  # UsageError: 422
    return UsageReportOut(tenant=who.tenant, **report)
