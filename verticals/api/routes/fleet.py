"""``GET /v1/workers``: the worker fleet as a tenant may see it (``verticals workers`` is the operator's full view).

Each live worker process (Celery, from its heartbeat in Redis: :mod:`verticals.workers.fleet`) with its queues,
models and devices, whether it is busy and when it was last heard of, and each queue's backlog. The chunk a worker
runs is shown only when its job is the caller's tenant's; worker machines are not named (``worker 1``, ``2``...).
"""

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from verticals.api.deps import ERRORS, State, Who
from verticals.api.schemas import ErrorOut

router = APIRouter()


class FleetChunkOut(BaseModel):
    job_id: str
    start: int
    end: int
    items: int
    running_s: float


class FleetWorkerOut(BaseModel):
    worker: int = Field(description="A number for this answer (worker machines are not named to tenants)")
    queues: list[str]
    busy: bool
    starting: bool = Field(default=False, description="Still starting: its pool processes are not up yet")
    chunk: FleetChunkOut | None = Field(default=None, description="The chunk it runs, when its job is yours")
    models: list[dict[str, Any]] = Field(default_factory=list, description="Loaded models: model, device, runtime")
    heard_s: float = Field(description="Seconds since its last heartbeat")


class FleetOut(BaseModel):
    executor: str = Field(description="celery (workers), or local (this server's own threads: no fleet)")
    workers: list[FleetWorkerOut]
    queues: dict[str, int | None] = Field(description="Chunks waiting per queue, every tenant's (null: unknown)")


@router.get("/v1/workers", response_model=FleetOut, tags=["ops"], responses={**ERRORS, 503: {"model": ErrorOut}})
def workers(who: Who, state: State) -> FleetOut:
    """The live workers (from their heartbeats), their queues' backlog, and the chunks of your jobs they run."""
    from verticals.config import broker_url

    url = broker_url()
    if not url:
        return FleetOut(executor="local", workers=[], queues={})
    from verticals.workers.fleet import is_redis
    from verticals.workers.fleet_view import snapshot

    if not is_redis(url):
        return FleetOut(executor="celery", workers=[], queues={})
    try:
        fleet = snapshot(url)
    except Exception:
        raise HTTPException(503, "the broker does not answer: the workers' state cannot be read now") from None
    out = []
    for number, worker in enumerate(fleet["workers"], 1):
        chunk = worker.get("chunk")
        mine = bool(chunk) and state.tenants.job(str(chunk.get("job_id")), who.tenant) is not None
        out.append(FleetWorkerOut(worker=number, queues=worker.get("queues") or [], busy=bool(chunk),
                                  starting=bool(worker.get("starting")),
                                  chunk=FleetChunkOut(**{k: chunk[k] for k in FleetChunkOut.model_fields})
                                  if mine and chunk else None,
                                  models=worker.get("models") or [], heard_s=round(worker["age_s"], 3)))
    return FleetOut(executor="celery", workers=out, queues=fleet["queues"])
