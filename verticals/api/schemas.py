"""Request and response bodies of the REST API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from verticals.contract import Explanation
from verticals.core.text import unstorable


def _storable(value: Any) -> Any:
    """The store's rule for text (verticals.core.text), on the raw JSON before anything else reads it: no lone
    surrogate, nested at most MAX_DEPTH levels (422 naming the item and field, never a 500)."""
    problem = unstorable(value)
    if problem:
        raise ValueError(problem)
    return value


Storable = BeforeValidator(_storable)


class ErrorOut(BaseModel):
    detail: str = Field(description="What happened and what to do.")


class PluginOut(BaseModel):
    name: str
    distribution: str | None = None
    version: str | None = None
    status: str
    error: str | None = None
    hooks: list[str] = []
    tasks: list[str] = []
    models: list[str] = []


class TaskOut(BaseModel):
    name: str
    plugin: str | None = None
    description: str = ""
    device: str
    chunk_size: int
    batch_size: int
    sensitive: bool = False
    executes_code: bool = Field(False, description="Runs code from its inputs: needs an operator's grant "
                                                   "(verticals keys create --allow-code-execution)")
    explains: bool = Field(False, description="Explains its results: jobs and predict calls take explain")
    text_field: str | None = None
    models: dict[str, str] = {}
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    params_schema: dict[str, Any]


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(description="Task name, e.g. finance.sentiment (GET /v1/tasks).", min_length=1, max_length=200)
    items: Annotated[list[dict[str, Any]], Storable] = Field(
        description="Input items: objects matching the task's input_schema.")
    params: Annotated[dict[str, Any], Storable] = Field(default_factory=dict,
                                                        description="Task parameters (its params_schema).")
    text_column: str | None = Field(default=None, min_length=1, max_length=200,
                                    description="Key of the items holding the task's text field (default: the "
                                                "field's own name), as for uploads.")
    chunk_size: int | None = Field(default=None, ge=1, le=100_000, description="Items per chunk (default: task's).")
    purge_inputs: bool = Field(default=False, description="Delete each item's input once its output is stored.")
    explain: bool = Field(default=False, description="Store each result's explanation (evidence and a one-line "
                                                     "summary), returned with the results; for tasks that explain "
                                                     "(GET /v1/tasks: explains). Costs extra model calls per item.")


class ItemProgressOut(BaseModel):
    items: int = Field(description="items in the batches that reported")
    done: float = Field(description="how much of them is done, in items (e.g. 1.5 of 4)")
    note: str | None = Field(default=None, description="the task's latest status line (never item contents)")
    step: float | None = Field(default=None, description="the latest report's steps done")
    steps: float | None = Field(default=None, description="... of this many (null: unknown)")
    updated_at: str | None = Field(default=None, description="when the latest report was made")


class ModelUsageOut(BaseModel):
    model: str
    device: str = Field(description="Where it ran: cpu, cuda:0, mps...")
    model_s: float = Field(description="Seconds of this model's calls")
    tokens: int = Field(description="Tokens it read and generated")
    calls: int
    peak_memory_bytes: int | None = Field(default=None, description="CUDA: the process's peak of allocated GPU "
                                                                     "memory (torch); null where not known")


class UsageOut(BaseModel):
    items: int = Field(description="Items that ran and got a result (succeeded or failed)")
    model_s: float = Field(description="Model seconds, every model and device")
    wall_s: float = Field(description="Seconds the batches took (model loading excluded)")
    tokens: int
    models: list[ModelUsageOut] = Field(default_factory=list)
    cost: float | None = Field(default=None, description="By the operator's price table (VERTICALS_PRICES); null "
                                                         "when none is set")


class JobUsageOut(UsageOut):
    currency: str | None = Field(default=None, description="The unit of cost (null: no price table)")


class UsageDayOut(UsageOut):
    day: str = Field(description="UTC day, YYYY-MM-DD")
    jobs: int = Field(description="Jobs that ran batches that day")


class UsageTotalOut(UsageOut):
    jobs: int


class UsageReportOut(BaseModel):
    tenant: str
    since: str | None
    until: str | None
    currency: str | None = Field(description="The unit of the costs (null: no price table)")
    days: list[UsageDayOut]
    total: UsageTotalOut


class JobOut(BaseModel):
    id: str
    task: str
    status: Literal["queued", "running", "interrupted", "succeeded", "partial", "failed", "cancelled"]
    total: int
    done: int
    progress: float = Field(description="done / total, 0..1, counting the share of the running items that "
                                        "they reported done (item_progress)")
    item_progress: ItemProgressOut | None = Field(
        default=None, description="What the running items report of themselves (tasks whose items take long: "
                                  "testgen, tutor.hint); null when nothing running reported")
    counts: dict[str, int]
    params: dict[str, Any]
    options: dict[str, Any] = {}
    plugin: str | None = None
    plugin_version: str | None = None
    cancel_requested: bool = False
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    elapsed_s: float | None = None
    tenant: str | None = None
    usage: JobUsageOut | None = Field(default=None, description="What the job used so far (items, model time...)")
    items_per_s: float | None = Field(default=None, description="Throughput so far")
    eta_s: float | None = Field(default=None, description="Estimated seconds left (running jobs)")


class JobList(BaseModel):
    jobs: list[JobOut]
    next_offset: int | None = None


class ResultOut(BaseModel):
    seq: int
    status: str
    output: dict[str, Any] | None = None
    error: str | None = None
    explanation: Explanation | None = Field(default=None, description="Why the output is what it is: only for "
                                                                      "jobs (or predict calls) with explain")
    input: dict[str, Any] | None = None


class ResultPage(BaseModel):
    job_id: str
    items: list[ResultOut]
    next_offset: int | None = Field(default=None, description="Pass as offset for the next page; null at the end")


class RetryOut(BaseModel):
    requeued: int
    job: JobOut


class ResumeOut(BaseModel):
    resumed: int = Field(description="Pending items handed to the executor (0: nothing was pending)")
    job: JobOut
    detail: str | None = Field(default=None, description="Why nothing was resumed, and what would run the job's "
                                                          "items again")


class PredictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=200)
    items: Annotated[list[dict[str, Any]], Storable]
    params: Annotated[dict[str, Any], Storable] = Field(default_factory=dict)
    explain: bool = Field(default=False, description="Also return each result's explanation")


class PredictOut(BaseModel):
    task: str
    results: list[ResultOut]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000, description="http(s) URL that receives POSTed events")
    events: list[Literal["job.finished", "job.failed"]] | None = Field(
        default=None, description="Events to send (default: both)")
    secret: str | None = Field(default=None, min_length=16, max_length=128,
                               description="Signing secret (default: generated and returned once)")


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: str | None = None
    secret: str | None = Field(default=None, description="Only in the creation response")


class DeliveryOut(BaseModel):
    id: str
    webhook_id: str
    job_id: str
    event: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: str | None = None
    delivered_at: str | None = None
    next_attempt_at: str | None = None


class MeOut(BaseModel):
    tenant: str
    key_id: str | None = None
    key_name: str | None = None
    auth: bool
    executor: str
    allow_code_execution: bool = Field(False, description="May this key run tasks that execute code")


def job_out(summary: dict[str, Any]) -> JobOut:
    """A job's summary (``Store.summary``) as the API shows it, with throughput and ETA."""
    rate = eta = None
    if summary.get("elapsed_s"):
        # items done, and the share of the running ones they reported (long items move the rate and ETA too)
        done = summary["done"] + ((summary.get("item_progress") or {}).get("done") or 0.0)
        rate = done / summary["elapsed_s"] if done else 0.0
        if summary["status"] == "running" and rate:
            eta = max(0.0, summary["total"] - done) / rate
    fields = {k: v for k, v in summary.items() if k in JobOut.model_fields}
    if summary.get("usage") is not None:
        from verticals.config import settings
        from verticals.core.jobs.usage import cost

        priced = cost(summary["usage"])
        fields["usage"] = {**summary["usage"], "cost": priced,
                           "currency": settings().price_currency if priced is not None else None}
    return JobOut(**fields, items_per_s=rate, eta_s=eta)


def iso(value: Any) -> str | None:
    return value.isoformat() if value else None
