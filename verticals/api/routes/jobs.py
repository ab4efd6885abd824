"""Jobs and their results: ``/v1/jobs`` (JSON items or an uploaded file), status, results, cancel, retry, resume."""

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from verticals.api.deps import ERRORS, FORBIDDEN, ApiState, OwnedJob, Principal, State, Who, known_task, may_run
from verticals.api.schemas import (
    ErrorOut,
    JobCreate,
    JobList,
    JobOut,
    ResultOut,
    ResultPage,
    ResumeOut,
    RetryOut,
    job_out,
)
from verticals.api.uploads import iter_rows, scan, upload_format
from verticals.core.io import InputError, map_fields
from verticals.core.jobs.service import JobConflict, field_map, resumable
from verticals.core.store.secrets import redact_request_params

router = APIRouter()

JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS, **FORBIDDEN,
    409: {"model": ErrorOut, "description": "Idempotency-Key reused with another body"},
    413: {"model": ErrorOut, "description": "Too many items or too large a body"},
    422: {"model": ErrorOut}, 503: {"model": ErrorOut, "description": "No executor"}}


def _create(state: ApiState, who: Principal, idempotency_key: str | None, body_hash: str,
            submit: Callable[[Callable[[str], None]], str]) -> JSONResponse:
    """``submit(on_stored)`` (a ``JobService.submit_and_start``: 503 before anything is stored when the executor
    cannot take the job, 429 past the tenant's quota) under the request's Idempotency-Key."""
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 255:
            raise HTTPException(422, "Idempotency-Key must be 1 to 255 characters")
        outcome, job_id = state.tenants.claim_idempotency_key(who.tenant, idempotency_key, body_hash)
        if outcome == "conflict":
            raise HTTPException(409, "this Idempotency-Key was already used with a different request body: "
                                     "use a new key for a new job")
        if outcome == "same":
            if job_id is None:
                raise HTTPException(409, "a request with this Idempotency-Key is still being processed: "
                                         "retry in a moment")
            return JSONResponse(job_out(state.store.summary(job_id)).model_dump(mode="json"), status_code=200,
                                headers={"Idempotent-Replayed": "true", "Location": f"/v1/jobs/{job_id}"})
    stored: list[str] = []
    try:
        job_id = submit(stored.append)
    except BaseException:
        if idempotency_key is not None:
            if stored and _exists(state, stored[0]):  # kept (something of it ran): the key names it
                state.tenants.complete_idempotency_key(who.tenant, idempotency_key, stored[0])
            else:  # never stored, or withdrawn (refused before anything ran): the key may be used again
                state.tenants.release_idempotency_key(who.tenant, idempotency_key)
        raise
    if idempotency_key is not None:
        state.tenants.complete_idempotency_key(who.tenant, idempotency_key, job_id)
    return JSONResponse(job_out(state.store.summary(job_id)).model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/v1/jobs/{job_id}"})


def _exists(state: ApiState, job_id: str) -> bool:
    try:
        state.store.job(job_id)
    except KeyError:
        return False
    return True


@router.post("/v1/jobs", response_model=JobOut, status_code=202, tags=["jobs"], responses=JOB_RESPONSES)
def create_job(body: JobCreate, who: Who, state: State,
               idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> JSONResponse:
    """Create a job from JSON items; it runs in the background. Poll GET /v1/jobs/{id} or use a webhook."""
    known_task(state, body.task, who)
    if len(body.items) > state.limits.max_job_items:
        raise HTTPException(413, f"{len(body.items)} items is more than the {state.limits.max_job_items} one JSON "
                                 "request takes (VERTICALS_API_MAX_JOB_ITEMS): upload a file to "
                                 "POST /v1/jobs/upload instead")
    unset = ({"text_column"} if body.text_column is None else set()) | (set() if body.explain else {"explain"})
    # (above: the hash of a body as it was before those fields existed)
    hashed = {**body.model_dump(mode="json", exclude=unset),  # secret parameters enter the hash as their fingerprint
              "params": redact_request_params(state.registry.task(body.task).Params, body.params)}
    body_hash = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()
    return _create(state, who, idempotency_key, body_hash, lambda on_stored: state.jobs.submit_and_start(
        body.task, body.items, items=len(body.items), on_stored=on_stored, params=body.params,
        text_column=body.text_column, options={"purge_inputs": body.purge_inputs}, chunk_size=body.chunk_size,
        tenant=who.tenant, explain=body.explain).job_id)


@router.post("/v1/jobs/upload", response_model=JobOut, status_code=202, tags=["jobs"], responses=JOB_RESPONSES)
async def upload_job(
    who: Who,
    state: State,
    task: Annotated[str, Form(description="Task name", min_length=1, max_length=200)],
    file: Annotated[UploadFile, File(description="CSV (header row), JSONL or TXT (one text per line), UTF-8")],
    params: Annotated[str, Form(description="Task parameters as a JSON object")] = "{}",
    text_column: Annotated[str | None, Form(description="Column holding the task's text field")] = None,
    format: Annotated[str | None, Form(description="csv, jsonl or txt (default: from the file name)")] = None,
    chunk_size: Annotated[int | None, Form(ge=1, le=100_000)] = None,
    purge_inputs: Annotated[bool, Form()] = False,
    explain: Annotated[bool, Form(description="Store each result's explanation (tasks that explain)")] = False,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Create a job from an uploaded file, streamed into the database row by row."""
    known_task(state, task, who)
    try:
        parsed_params = json.loads(params)
    except json.JSONDecodeError:
        raise HTTPException(422, "params must be a JSON object, e.g. {\"mode\": \"fast\"}") from None
    if not isinstance(parsed_params, dict):
        raise HTTPException(422, "params must be a JSON object, e.g. {\"mode\": \"fast\"}")
    kind = upload_format(file.filename, format)
    task_cls = state.registry.task(task)
    mapping = field_map(task_cls, text_column, text_option="the form field text_column",  # the rule of every front end
                        field_option="POST /v1/jobs and items holding those fields")
    extra = json.dumps([task, redact_request_params(task_cls.Params, parsed_params), text_column, kind, chunk_size,
                        purge_inputs, *([True] if explain else [])], sort_keys=True, default=str)

    pick = "the form field text_column=COLUMN"

    def work() -> JSONResponse:
        count, digest = scan(file.file, kind, extra.encode())  # every row parses before a job exists
        if not count:
            raise InputError("the upload has no rows (an empty file, or a header and no row): nothing to run")
        first = map_fields(iter_rows(file.file, kind), mapping, required=task_cls.text_field, pick=pick)
        try:
            next(first)  # column mapping problems are reported before a job exists
        finally:
            close = getattr(first, "close", None)
            if close is not None:
                close()
        return _create(state, who, idempotency_key, digest, lambda on_stored: state.jobs.submit_and_start(
            task, iter_rows(file.file, kind), items=count, on_stored=on_stored, params=parsed_params,
            text_column=text_column, options={"purge_inputs": purge_inputs, "source": kind}, chunk_size=chunk_size,
            tenant=who.tenant, allow_empty=False, file_rows=True, pick=pick, explain=explain).job_id)

    try:
        return await run_in_threadpool(work)
    finally:
        await file.close()


@router.get("/v1/jobs", response_model=JobList, tags=["jobs"], responses=ERRORS)
def list_jobs(who: Who, state: State, limit: Annotated[int, Query(ge=1, le=200)] = 20,
              offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> JobList:
    """The tenant's jobs, newest first."""
    jobs = state.jobs.list(limit, offset, tenant=who.tenant)
    return JobList(jobs=[job_out(summary) for summary in jobs],
                   next_offset=offset + limit if len(jobs) == limit else None)


@router.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=ERRORS)
def job_status(job_id: OwnedJob, state: State) -> JobOut:
    """Status, counts, progress, throughput and ETA of a job."""
    return job_out(state.jobs.summary(job_id))


StatusFilter = Annotated[str | None, Query(pattern="^(pending|succeeded|failed|cancelled)$",
                                           description="Only items with this status")]


@router.get("/v1/jobs/{job_id}/results", response_model=ResultPage, tags=["results"], responses=ERRORS,
            response_model_exclude_unset=True)
def results(job_id: OwnedJob, state: State, status: StatusFilter = None,
            offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="First item number (seq)")] = 0,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100, include_inputs: bool = False) -> ResultPage:
    """One page of results in input order (seq >= offset)."""
    rows = list(state.jobs.results(job_id, status=status, include_inputs=include_inputs, offset=offset, limit=limit))
    return ResultPage(job_id=job_id, items=[ResultOut(**row) for row in rows],
                      next_offset=rows[-1]["seq"] + 1 if len(rows) == limit else None)


@router.get("/v1/jobs/{job_id}/results.ndjson", tags=["results"], responses={
    **ERRORS, 200: {"content": {"application/x-ndjson": {}}, "description": "One JSON result per line"}})
def results_ndjson(job_id: OwnedJob, state: State, status: StatusFilter = None, include_inputs: bool = False,
                   ) -> StreamingResponse:
    """Every result as NDJSON, streamed (constant memory, any job size)."""

    rows = state.jobs.results(job_id, status=status, include_inputs=include_inputs)

    def lines() -> Iterator[bytes]:
        for row in rows:
            yield (json.dumps(row, ensure_ascii=False) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/v1/jobs/{job_id}/summary", tags=["results"], responses=ERRORS)
def job_summary(job_id: OwnedJob, state: State) -> JSONResponse:
    """The task's job-level summary (summary.json), once the job finished."""
    artifact = state.store.get_artifact(job_id, "summary.json")
    if artifact is None:
        raise HTTPException(404, "this job has no summary (yet): it appears when the job finishes, "
                                 "for tasks that compute one")
    return JSONResponse(json.loads(artifact.content))


@router.post("/v1/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"], responses=ERRORS)
def cancel(job_id: OwnedJob, state: State) -> JobOut:
    """Cancel: running chunks stop at their next batch; items not started are cancelled."""
    return job_out(state.jobs.cancel(job_id))


@router.post("/v1/jobs/{job_id}/retry", response_model=RetryOut, tags=["jobs"],
             responses={**ERRORS, **FORBIDDEN, 409: {"model": ErrorOut}, 503: {"model": ErrorOut}})
def retry(job_id: OwnedJob, who: Who, state: State) -> RetryOut:
    """Re-run the failed items of a finished job: ``JobService.retry``, the rule of the CLI and the SDK (a job
    still queued or running is a 409 conflict; 503 when the executor cannot take them now; 429 past the
    tenant's quota: its failed items count again)."""
    task_name = state.store.job(job_id).task
    if task_name in state.registry.tasks:
        may_run(state, state.registry.tasks[task_name], who)
    try:
        count = state.jobs.retry(job_id, tenant=who.tenant)
    except JobConflict as error:  # what to do, in API terms
        raise JobConflict(f"{error}. Over the API: POST /v1/jobs/{job_id}/cancel to cancel it, or "
                          f"POST /v1/jobs/{job_id}/resume to run its pending items (e.g. after a broker "
                          "restart lost its chunks)") from None
    return RetryOut(requeued=count, job=job_out(state.jobs.summary(job_id)))


@router.post("/v1/jobs/{job_id}/resume", response_model=ResumeOut, tags=["jobs"],
             responses={**ERRORS, **FORBIDDEN, 409: {"model": ErrorOut}, 503: {"model": ErrorOut}})
def resume(job_id: OwnedJob, who: Who, state: State) -> ResumeOut:
    """Run the pending items of a job again: one whose chunks were lost (a broker restart), or one left
    ``interrupted`` or unfinished by a stopped server. The same rule as ``verticals jobs resume``: a finished job
    with nothing pending is left as it is (``resumed`` 0, ``detail`` says what would run its items again)."""
    summary = state.jobs.summary(job_id)
    if not resumable(summary):  # JobService.resume's rule, in API words
        return ResumeOut(resumed=0, job=job_out(summary), detail=_nothing_to_resume(summary))
    task_name = state.store.job(job_id).task
    if task_name in state.registry.tasks:
        may_run(state, state.registry.tasks[task_name], who)
    pending = int(summary["counts"].get("pending") or 0)
    state.jobs.resume(job_id, wait=False)  # 503 when the executor cannot take it now (the job stays as it is);
    # JobConflict (409) for a job whose submission never completed
    return ResumeOut(resumed=pending, job=job_out(state.jobs.summary(job_id)))


def _nothing_to_resume(summary: dict[str, Any]) -> str:
    """The API's words for the CLI's ``jobs resume`` of a finished job (``verticals.cli.jobs._nothing_to_resume``)."""
    counts, job_id = summary["counts"], summary["id"]
    said = f"job {job_id} is {summary['status']}: nothing is pending, so there is nothing to resume"
    if counts.get("failed"):
        said += f"; its {counts['failed']} failed item(s) run again with POST /v1/jobs/{job_id}/retry"
    if counts.get("cancelled"):
        said += (f"; its {counts['cancelled']} cancelled item(s) are not run again (cancelling is final: submit "
                 "them again to run them)")
    return said


@router.get("/v1/jobs/{job_id}/export", tags=["results"], responses={
    **ERRORS, 422: {"model": ErrorOut},
    200: {"description": "The results as a file: csv, jsonl, parquet, or zip (a folder export: results.jsonl, the "
                         "task's files, summary.json)"}})
def export(job_id: OwnedJob, state: State,
           format: Annotated[str, Query(pattern="^(csv|jsonl|parquet|zip)$", description="csv, jsonl, parquet or zip")
                             ] = "csv",
           include_inputs: Annotated[bool | None, Query(
               description="Export the inputs too (default: yes, except for sensitive tasks)")] = None) -> Response:
    """The job's results as one file, made by the same export as ``verticals jobs export`` (columns from the
    task's output schema). CSV and JSONL are streamed; Parquet and zip are written first, then sent."""
    from verticals.core.jobs.export import MEDIA_TYPES

    headers = {"Content-Disposition": f'attachment; filename="{job_id}.{format}"'}
    if format in ("csv", "jsonl"):
        return StreamingResponse(state.jobs.stream_export(job_id, format, include_inputs),
                                 media_type=MEDIA_TYPES[format], headers=headers)
    folder = tempfile.mkdtemp(prefix="verticals-export-")
    path = Path(folder) / f"{job_id}.{format}"
    try:
        state.jobs.export(job_id, path, include_inputs=include_inputs, fmt=format)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(path, media_type=MEDIA_TYPES.get(format, "application/octet-stream"), headers=headers,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))
