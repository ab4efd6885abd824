"""REST routes of the evaluation loop: ``POST /v1/evals``, ``GET /v1/evals/{id}``, ``GET /v1/evals``.

An evaluation is an ordinary job of the tenant (it runs on the server's executor like any other); once it has
finished, the first ``GET /v1/evals/{id}`` scores it with the task's evaluator and stores the run.
"""

from typing import Annotated, Any  # no `from __future__ import annotations`: FastAPI reads these at runtime

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from verticals.api.deps import ERRORS, FORBIDDEN, State, Who, known_task, owned_job
from verticals.api.schemas import ErrorOut, Storable
from verticals.core.evaluation.scoring import EvalError, evaluator_of, items_hash, score_job, submit_eval
from verticals.core.io import map_fields
from verticals.core.jobs.service import field_map

router = APIRouter()
RESPONSES: dict[int | str, dict[str, Any]] = {**ERRORS, **FORBIDDEN, 422: {"model": ErrorOut}}


class EvalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=200, description="A task that declares an evaluator.")
    items: Annotated[list[dict[str, Any]], Storable] = Field(min_length=1,
                                                             description="Input items, each with its gold value.")
    gold_field: str | None = Field(default=None, max_length=200,
                                   description="Field of each item holding the gold value (default: the evaluator's).")
    params: Annotated[dict[str, Any], Storable] = Field(default_factory=dict, description="Task parameters.")
    text_column: str | None = Field(default=None, min_length=1, max_length=200,
                                    description="Key of the items holding the task's text field (as for jobs).")


@router.post("/v1/evals", status_code=202, tags=["evals"], responses=RESPONSES)
def create_eval(body: EvalCreate, who: Who, state: State) -> JSONResponse:
    """Evaluate a task on labelled items; poll ``GET /v1/evals/{id}`` for the metrics."""
    known_task(state, body.task, who)
    if len(body.items) > state.limits.max_job_items:
        raise HTTPException(413, f"{len(body.items)} items is more than the {state.limits.max_job_items} one "
                                 "request takes (VERTICALS_API_MAX_JOB_ITEMS)")
    try:
        task_cls, evaluator = evaluator_of(state.registry, body.task)
        gold = body.gold_field or evaluator.gold_field
        mapping = field_map(task_cls, body.text_column, text_option="text_column",  # the rule of every front end
                            field_option="items holding the task's fields")
        rows = list(map_fields(body.items, mapping)) if mapping else body.items
        job_id = submit_eval(state.jobs, body.task, rows, gold_field=gold, data_name=f"{len(body.items)} items (API)",
                             data_hash=items_hash(body.items), params=body.params, mapping=mapping,
                             tenant=who.tenant, run="start", items=len(rows))  # JobService.submit_and_start
    except EvalError as error:
        raise EvalError(str(error).replace("--gold-column COLUMN", "gold_field")) from None  # in API terms
    return JSONResponse({"id": job_id, "status": "queued", "url": f"/v1/evals/{job_id}"}, status_code=202,
                        headers={"Location": f"/v1/evals/{job_id}"})


@router.get("/v1/evals/{eval_id}", tags=["evals"], responses=RESPONSES)
def get_eval(eval_id: str, who: Who, state: State) -> JSONResponse:
    """The evaluation's progress while its job runs; its metrics, per-class figures and models once done."""
    job_id = owned_job(eval_id, who, state)
    job = state.store.job(job_id)
    if not isinstance((job.options or {}).get("evaluation"), dict):
        raise HTTPException(404, f"job {job_id} is not an evaluation: see GET /v1/jobs/{job_id}")
    summary = state.store.summary(job_id)
    if summary["status"] in ("queued", "running", "interrupted"):
        return JSONResponse({"id": job_id, "status": summary["status"], "done": summary["done"],
                             "total": summary["total"]})
    result = score_job(state.store, state.registry, job_id)
    return JSONResponse({"id": job_id, "status": summary["status"], "run": result.as_dict()})


@router.get("/v1/evals", tags=["evals"], responses=RESPONSES)
def list_evals(who: Who, state: State, task: str | None = None,
               limit: Annotated[int, Query(ge=1, le=200)] = 20) -> JSONResponse:
    """The tenant's stored evaluation runs, newest first."""
    from verticals.core.evaluation.runs import list_runs

    runs = list_runs(state.store, task, limit, tenant=who.tenant)
    return JSONResponse([{"id": r.id, "job_id": r.job_id, "task": r.task, "created_at": r.created_at.isoformat(),
                          "data": r.data_name, "metrics": r.metrics} for r in runs])
