"""The Python SDK: ``verticals.Client`` — the same methods remote (REST) or in-process.

::

    import verticals

    client = verticals.Client("http://127.0.0.1:8000", api_key="vk_...")   # remote, over REST
    client = verticals.Client()                                             # in-process, no server

    job = client.submit("finance.sentiment", items=[{"text": "Shares jumped 8%"}])
    job.wait(progress=True)
    for result in job.results():
        print(result.seq, result.status, result.output)
    client.predict("finance.sentiment", [{"text": "Guidance cut"}])

Remote: ``api_key`` defaults to ``$VERTICALS_API_KEY``. In-process: jobs run in a
background thread of this process with the local executor (or are dispatched to
Celery workers when ``VERTICALS_BROKER_URL`` is set), in the configured database,
with no tenant (like CLI jobs); call ``job.wait()`` before the program exits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from verticals.contract import Explanation

M = TypeVar("M", bound=BaseModel)
ACTIVE = ("queued", "running")


class VerticalsError(RuntimeError):
    """A request the server (or the local engine) refused; ``status_code`` is the HTTP status (remote)."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class ServerUnavailable(VerticalsError):
    """The server could not be reached (not running, wrong URL, network down) or did not answer in time."""


class InputRefused(VerticalsError):
    """The job's input or parameters were refused (a bad file, an unknown column or task): nothing was stored."""


def _storable(items: list[Any], params: Any) -> list[Any]:
    """The server's rule for text (``verticals.core.text``), applied before a request is built: a lone surrogate
    or JSON nested too deeply is an :class:`InputRefused` naming the item, not an encoding traceback."""
    from verticals.core.text import unstorable

    problem = unstorable(params) and f"params: {unstorable(params)}"
    problem = problem or next((f"item {n}: {p}" for n, item in enumerate(items, 1) if (p := unstorable(item))), None)
    if problem:
        raise InputRefused(problem, 422)
    return items


class QuotaExceeded(VerticalsError):
    """Your tenant is past a quota the server's operator set (HTTP 429): too many unfinished jobs, or its items
    or model seconds of the day. ``retry_after``: seconds until it may ask again (the server's ``Retry-After``);
    the message says which quota. Nothing was stored; the tenant's running jobs are not affected."""

    def __init__(self, message: str, status_code: int = 429, retry_after: int | None = None):
        super().__init__(message, status_code)
        self.retry_after = retry_after


def _refusal(message: str, status_code: int, retry_after: int | None = None) -> VerticalsError:
    if status_code == 429:
        return QuotaExceeded(message, status_code, retry_after)
    return (InputRefused if status_code in (400, 413, 415, 422) else VerticalsError)(message, status_code)


@dataclass(frozen=True)
class Result:
    """One item's result: ``output`` when it succeeded, ``error`` when it failed."""

    seq: int
    status: str
    output: dict[str, Any] | None = None
    error: str | None = None
    input: dict[str, Any] | None = None
    explanation: dict[str, Any] | None = None  # submitted with explain=True: summary, method, target, evidence

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def output_as(self, model: type[M]) -> M | None:
        """The output validated as ``model`` (e.g. the task's ``Output``), or None for a failed item."""
        return model.model_validate(self.output) if self.output is not None else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        return cls(int(data["seq"]), data["status"], data.get("output"), data.get("error"), data.get("input"),
                   data.get("explanation"))

    def explanation_as(self) -> Explanation | None:
        """The explanation as the contract's typed :class:`~verticals.contract.Explanation` (None: not explained)."""
        from verticals.contract import Explanation

        return Explanation.model_validate(self.explanation) if self.explanation is not None else None


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of a job: status, counts, progress (0..1), throughput and ETA."""

    id: str
    task: str
    status: str
    total: int
    done: int
    progress: float
    counts: dict[str, int] = field(default_factory=dict)
    items_per_s: float | None = None
    eta_s: float | None = None
    created_at: str | None = None
    finished_at: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def note(self) -> str | None:
        """The running items' latest status line (``item_progress.note``: testgen, tutor.hint), if any."""
        return ((self.raw.get("item_progress") or {}).get("note")) or None

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        rate, eta = data.get("items_per_s"), data.get("eta_s")
        if rate is None and data.get("elapsed_s"):
            rate = data["done"] / data["elapsed_s"]
            if data["status"] == "running" and rate:
                eta = (data["total"] - data["done"]) / rate
        return cls(data["id"], data["task"], data["status"], data["total"], data["done"], data["progress"],
                   dict(data.get("counts") or {}), rate, eta, data.get("created_at"), data.get("finished_at"),
                   dict(data))


class Job:
    """A handle on a job; every method asks the server (or the local store) afresh."""

    def __init__(self, client: Client, job_id: str):
        self.client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def status(self) -> JobStatus:
        return JobStatus.from_dict(self.client._backend.status(self.id))

    def wait(self, progress: bool = False, timeout: float | None = None, poll: float = 0.5) -> JobStatus:
        """Block until the job finished; ``progress=True`` draws a progress bar on stderr. Returns the final status.

        Raises ``TimeoutError`` after ``timeout`` seconds (the job keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = None
        state = self.status()
        try:
            if progress:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

                bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TimeRemainingColumn(), TextColumn("{task.fields[note]}"), console=Console(stderr=True))
                bar.start()
                handle = bar.add_task(state.task, total=state.total, completed=state.done, note="")
            while not state.finished:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {self.id} is still {state.status} after {timeout}s "
                                       f"({state.done}/{state.total} done)")
                time.sleep(poll)
                state = self.status()
                if bar is not None:
                    bar.update(handle, completed=state.progress * state.total, total=state.total,
                               note=(state.note or "")[:40])
        finally:
            if bar is not None:
                bar.stop()
        return state

    def results(self, status: str | None = None, include_inputs: bool = False) -> Iterator[Result]:
        """Every result in input order, streamed (constant memory). ``status``: only succeeded / failed / ..."""
        for row in self.client._backend.results(self.id, status, include_inputs):
            yield Result.from_dict(row)

    def cancel(self) -> JobStatus:
        return JobStatus.from_dict(self.client._backend.cancel(self.id))

    def export(self, dest: str | Path, include_inputs: bool | None = None) -> Path:
        """Write the results to ``dest``: a ``.csv``, ``.jsonl``, ``.parquet`` or ``.zip`` file, or a folder (no
        extension: ``results.jsonl``, the task's files, ``summary.json``); the same export as ``verticals jobs
        export``. Inputs are left out of sensitive tasks' exports unless ``include_inputs=True``. Returns ``dest``."""
        try:
            self.client._backend.export(self.id, Path(dest), include_inputs)
        except OSError as error:  # a folder that cannot be made, a file that cannot be written
            where = error.filename or dest
            raise VerticalsError(f"cannot write the export to {dest} ({where}: {error.strerror or error}): choose "
                                 "another destination") from None
        return Path(dest)

    def retry(self) -> int:
        """Run the failed items again; returns how many were queued."""
        return self.client._backend.retry(self.id)

    def resume(self) -> JobStatus:
        """Run the job's pending items again (chunks lost with a broker restart, a run that was stopped); returns
        at once with the job's status (``wait()`` for the end). The rule of ``verticals jobs resume``: a finished job
        with nothing pending is left as it is."""
        return JobStatus.from_dict(self.client._backend.resume(self.id))


class Client:
    """``Client(url=None, api_key=None)``: remote over REST when ``url`` is given, in-process otherwise."""

    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 60.0):
        self.url = url
        if url:
            if api_key is None:
                from verticals.config import settings

                secret = settings().api_key
                api_key = secret.get_secret_value() if secret is not None else None
            self._backend: Any = _Remote(url.rstrip("/"), api_key, timeout)
        else:
            self._backend = _Local()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._backend.close()

    def tasks(self) -> list[dict[str, Any]]:
        """Installed tasks with their input, output and params JSON schemas."""
        return self._backend.tasks()

    def submit(self, task: str, items: Iterable[dict[str, Any]] | None = None, *, path: str | Path | None = None,
               params: dict[str, Any] | None = None, text_column: str | None = None,
               chunk_size: int | None = None, idempotency_key: str | None = None, explain: bool = False) -> Job:
        """Create a job from ``items`` (dicts) or a file at ``path`` (.csv, .jsonl, .txt); returns at once.
        ``explain``: each result carries its explanation (``Result.explanation``; tasks that explain)."""
        if (items is None) == (path is None):
            raise ValueError("pass exactly one of items=[...] or path=...")
        job_id = self._backend.submit(task, None if items is None else list(items), path, params or {},
                                      text_column, chunk_size, idempotency_key, explain)
        return Job(self, job_id)

    def job(self, job_id: str) -> Job:
        return Job(self, self._backend.status(job_id)["id"])  # raises when unknown (or another tenant's)

    def resume(self, job_id: str) -> Job:
        """Run the pending items of job ``job_id`` again (see :meth:`Job.resume`); returns its handle."""
        job = self.job(job_id)
        job.resume()
        return job

    def usage(self, since: str | None = "30d", until: str | None = None) -> dict[str, Any]:
        """What jobs used per UTC day (``since`` / ``until``: ``2026-12-01`` or an age such as ``7d``), with totals
        and cost: ``{"days": [{"day", "jobs", "items", "model_s", "tokens", "wall_s", "models", "cost"}...], "total":
        {...}, "currency"}``. Remote: your tenant's (``GET /v1/usage``); in-process: every tenant's, as
        ``verticals usage`` shows it (each day names its ``tenant``; None: jobs without one)."""
        return self._backend.usage(since, until)

    def jobs(self, limit: int = 20) -> list[JobStatus]:
        return [JobStatus.from_dict(j) for j in self._backend.jobs(limit)]

    def predict(self, task: str, items: list[dict[str, Any]], params: dict[str, Any] | None = None,
                explain: bool = False) -> list[Result]:
        """Run ``task`` on a few items now (no job stored); one Result per item, in order (with ``explain``,
        each with its explanation)."""
        return [Result.from_dict(r) for r in self._backend.predict(task, list(items), params or {}, explain)]

    def evaluate(self, task: str, items: Iterable[dict[str, Any]] | None = None, *, path: str | Path | None = None,
                 gold: str | None = None, params: dict[str, Any] | None = None, text_column: str | None = None,
                 timeout: float | None = None) -> dict[str, Any]:
        """Score ``task`` on labelled ``items`` (or a file at ``path``; in process, the task's golden set when
        neither is given) and wait for the stored evaluation run: ``run["metrics"]``, ``run["id"]``, ...

        ``gold`` names the field with the gold value (default: the task evaluator's, e.g. ``label``).
        """
        if items is not None and path is not None:
            raise ValueError("pass items=[...] or path=..., not both")
        rows = None if items is None else list(items)
        if rows is None and path is not None and self.url:  # the server maps text_column, as for jobs
            from verticals.core.io import read_rows

            rows = list(read_rows(path))
        return self._backend.evaluate(task, rows, path, gold, params or {}, text_column, timeout)


# -- backends -------------------------------------------------------------------------------

class _Remote:
    def __init__(self, url: str, api_key: str | None, timeout: float):
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

        class Transport(httpx.HTTPTransport):  # a network failure becomes ServerUnavailable, with what to check
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                try:
                    return super().handle_request(request)
                except httpx.TimeoutException:
                    raise ServerUnavailable(f"the verticals server at {url} did not answer within {timeout}s "
                                            "(pass a larger timeout= to Client, or check the server)") from None
                except httpx.TransportError as error:
                    raise ServerUnavailable(f"cannot reach the verticals server at {url} ({error}): is "
                                            "`verticals serve` running there? Or use Client() with no URL to "
                                            "run in-process") from None

        self.http = httpx.Client(base_url=url, headers=headers, timeout=timeout, transport=Transport())

    def close(self) -> None:
        self.http.close()

    def _check(self, response: Any) -> Any:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except Exception:
                detail = response.text[:500]
            if not isinstance(detail, str):
                detail = json.dumps(detail)
            retry_after = response.headers.get("Retry-After", "")
            raise _refusal(f"HTTP {response.status_code}: {detail}", response.status_code,
                           int(retry_after) if retry_after.isdigit() else None)
        return response.json() if response.content else None

    def tasks(self) -> list[dict[str, Any]]:
        return self._check(self.http.get("/v1/tasks"))

    def submit(self, task, items, path, params, text_column, chunk_size, idempotency_key, explain=False) -> str:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if items is not None:
            items = _storable(list(items), params)
            body = {"task": task, "items": items, "params": params, **({"explain": True} if explain else {})}
            if text_column:
                body["text_column"] = text_column
            if chunk_size:
                body["chunk_size"] = chunk_size
            return self._check(self.http.post("/v1/jobs", json=body, headers=headers))["id"]
        path = Path(path)
        data = {"task": task, "params": json.dumps(params)}
        if text_column:
            data["text_column"] = text_column
        if chunk_size:
            data["chunk_size"] = str(chunk_size)
        if explain:
            data["explain"] = "true"
        with path.open("rb") as handle:  # httpx streams the file; it is not read into memory
            response = self.http.post("/v1/jobs/upload", data=data, files={"file": (path.name, handle)},
                                      headers=headers)
        return self._check(response)["id"]

    def status(self, job_id: str) -> dict[str, Any]:
        return self._check(self.http.get(f"/v1/jobs/{job_id}"))

    def jobs(self, limit: int) -> list[dict[str, Any]]:
        return self._check(self.http.get("/v1/jobs", params={"limit": limit}))["jobs"]

    def results(self, job_id: str, status: str | None, include_inputs: bool) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"include_inputs": str(include_inputs).lower()}
        if status:
            params["status"] = status
        with self.http.stream("GET", f"/v1/jobs/{job_id}/results.ndjson", params=params) as response:
            if response.status_code >= 400:
                response.read()
                self._check(response)
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._check(self.http.post(f"/v1/jobs/{job_id}/cancel"))

    def retry(self, job_id: str) -> int:
        return self._check(self.http.post(f"/v1/jobs/{job_id}/retry"))["requeued"]

    def resume(self, job_id: str) -> dict[str, Any]:
        return self._check(self.http.post(f"/v1/jobs/{job_id}/resume"))["job"]

    def usage(self, since: str | None, until: str | None) -> dict[str, Any]:
        params = {key: value for key, value in (("since", since), ("until", until)) if value}
        return self._check(self.http.get("/v1/usage", params=params))

    def export(self, job_id: str, dest: Path, include_inputs: bool | None) -> None:
        suffix = dest.suffix.lower().lstrip(".")
        folder = not suffix
        if not folder and suffix not in EXPORT_FORMATS:
            raise VerticalsError(f"cannot export to {dest}: use a .csv, .jsonl, .parquet or .zip file, or a folder")
        params: dict[str, Any] = {"format": "zip" if folder else suffix}
        if include_inputs is not None:
            params["include_inputs"] = str(include_inputs).lower()
        target = dest.with_name(dest.name + ".zip.part") if folder else dest.with_name(dest.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.http.stream("GET", f"/v1/jobs/{job_id}/export", params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                with target.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
            if folder:
                _unzip(target, dest)
                target.unlink()
            else:
                target.replace(dest)
        finally:
            target.unlink(missing_ok=True)

    def predict(self, task: str, items: list[dict[str, Any]], params: dict[str, Any], explain: bool = False
                ) -> list[dict[str, Any]]:
        items = _storable(items, params)
        body = {"task": task, "items": items, "params": params, **({"explain": True} if explain else {})}
        return self._check(self.http.post("/v1/predict", json=body))["results"]

    def evaluate(self, task, items, path, gold, params, text_column, timeout) -> dict[str, Any]:
        if items is None:
            raise VerticalsError("a remote evaluation needs items=[...] or path=... (the server has no golden "
                                 "sets of yours)")
        items = _storable(list(items), params)
        body = {"task": task, "items": items, "params": params, **({"gold_field": gold} if gold else {}),
                **({"text_column": text_column} if text_column else {})}
        eval_id = self._check(self.http.post("/v1/evals", json=body))["id"]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            answer = self._check(self.http.get(f"/v1/evals/{eval_id}"))
            if "run" in answer:
                return answer["run"]
            if deadline is not None and time.monotonic() > deadline:
                raise VerticalsError(f"evaluation {eval_id} did not finish within {timeout}s")
            time.sleep(0.5)


EXPORT_FORMATS = ("csv", "jsonl", "parquet", "zip")


def _unzip(archive: Path, folder: Path) -> None:
    """Extract a folder export; a member that would land outside ``folder`` is refused."""
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            target = (folder / member.filename).resolve()
            if root not in target.parents:
                raise VerticalsError(f"the export holds a file outside its folder: {member.filename!r}")
            if member.is_dir():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(bundle.read(member))


class _Local:
    """The in-process transport: a thin adapter over the job service (:class:`verticals.core.jobs.service.JobService`),
    the same rules as the CLI and the REST API; its errors become the SDK's."""

    def __init__(self) -> None:
        from verticals.core.models.host import ModelHost
        from verticals.core.store import open_store
        from verticals.registry import get_registry
        from verticals.workers import job_service

        self.store = open_store()
        self.registry = get_registry()
        self.host = ModelHost(self.registry.models)
        self.service = job_service(self.store, self.registry, self.host)
        self.started: list[str] = []  # jobs handed to the executor by this client

    def close(self) -> None:
        """Wait for the jobs this client started in this process (local executor), then stop its threads."""
        from verticals.core.jobs.executor import ExecutorUnavailable

        try:
            if self.service.has_executor and self.service.executor.name == "local":  # its threads die with the program
                for job_id in self.started:
                    self.service.wait(job_id)
        except ExecutorUnavailable:
            pass
        finally:
            self.started = []
            self.service.close()

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """``function(...)``, its expected errors raised as the SDK's with the status the REST API answers
        for them (one table: :mod:`verticals.core.errors`)."""
        from verticals.core.errors import meaning_of
        from verticals.core.jobs.predict import TooManyItems

        try:
            return function(*args, **kwargs)
        except TooManyItems as error:  # in the SDK's terms
            raise _refusal(str(TooManyItems(error.count, error.limit, "submit a job (client.submit)")),
                           413) from None
        except Exception as error:
            meaning = meaning_of(error)
            if meaning is not None:
                raise _refusal(str(error), meaning.status) from None
            if isinstance(error, KeyError | ValueError):  # a job id or a value the store did not know
                raise VerticalsError(str(error.args[0]) if isinstance(error, KeyError) and error.args
                                     else str(error)) from None
            raise

    def _started(self, job_id: str) -> None:
        if job_id not in self.started:
            self.started.append(job_id)

    def tasks(self) -> list[dict[str, Any]]:
        return [{**task.info(), "plugin": self.registry.task_plugin[name].name}
                for name, task in sorted(self.registry.tasks.items())]

    def submit(self, task, items, path, params, text_column, chunk_size, idempotency_key, explain=False) -> str:
        from verticals.core.io import read_rows

        rows: Iterable[dict[str, Any]] = items if items is not None else read_rows(path)
        submitted = self._call(self.service.submit_and_start, task, rows, params=params, text_column=text_column,
                               chunk_size=chunk_size, allow_empty=items is not None, file_rows=items is None,
                               pick="text_column=COLUMN", explain=explain)
        self._started(submitted.job_id)
        return str(submitted.job_id)

    def status(self, job_id: str) -> dict[str, Any]:
        return self._call(self.service.summary, job_id)

    def jobs(self, limit: int) -> list[dict[str, Any]]:
        return self._call(self.service.list, limit)

    def results(self, job_id: str, status: str | None, include_inputs: bool) -> Iterator[dict[str, Any]]:
        return self._call(self.service.results, job_id, status=status, include_inputs=include_inputs)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call(self.service.cancel, job_id)

    def export(self, job_id: str, dest: Path, include_inputs: bool | None) -> None:
        self._call(self.service.export, job_id, dest, include_inputs=include_inputs)

    def retry(self, job_id: str) -> int:
        count = int(self._call(self.service.retry, job_id))  # 409 (JobConflict) while the job runs
        if count:
            self._started(self.service.job(job_id).id)
        return count

    def resume(self, job_id: str) -> dict[str, Any]:
        found = self._call(self.service.job, job_id).id
        self._call(self.service.resume, found, wait=False)  # a finished job with nothing pending: left as it is
        self._started(found)
        return self._call(self.service.summary, found)

    def usage(self, since: str | None, until: str | None) -> dict[str, Any]:
        from verticals.core.jobs.usage import parse_day, usage_report

        return self._call(lambda: usage_report(self.store, since=parse_day(since), until=parse_day(until)))

    def predict(self, task: str, items: list[dict[str, Any]], params: dict[str, Any], explain: bool = False
                ) -> list[dict[str, Any]]:
        from verticals.core.jobs.predict import predict

        return self._call(predict, self.registry, self.host, task, items, params, explain=explain)

    def evaluate(self, task, items, path, gold, params, text_column, timeout) -> dict[str, Any]:
        from verticals.core.evaluation.scoring import evaluate

        result = self._call(evaluate, task, path, items=items, gold=gold, params=params, text_column=text_column,
                            service=self.service)  # run on this client's job service, as its jobs
        return result.as_dict()
