"""``POST /v1/predict``: a task on a few items now, nothing stored."""

from fastapi import APIRouter

from verticals.api.deps import ERRORS, FORBIDDEN, State, Who, known_task
from verticals.api.schemas import ErrorOut, PredictIn, PredictOut, ResultOut
from verticals.core.jobs.predict import TooManyItems, predict

router = APIRouter()


@router.post("/v1/predict", response_model=PredictOut, tags=["predict"], response_model_exclude_unset=True,
             responses={**ERRORS, **FORBIDDEN,
                        413: {"model": ErrorOut, "description": "More items than a synchronous call takes"},
                        422: {"model": ErrorOut}})
def predict_endpoint(body: PredictIn, who: Who, state: State) -> PredictOut:
    """Run a task on a few items now and return the results (nothing is stored)."""
    known_task(state, body.task, who)
    with state.predict_slots:
        try:
            results = predict(state.registry, state.host, body.task, body.items, body.params,
                              tenant=who.tenant, explain=body.explain)
        except TooManyItems as error:
            raise TooManyItems(error.count, error.limit, "submit a job (POST /v1/jobs)") from None  # in API terms
    return PredictOut(task=body.task, results=[ResultOut(**r) for r in results])
