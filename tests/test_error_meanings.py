"""One table of what each expected error means (issue 25 item 1): the REST API's status, the SDK's
``status_code`` (in-process and over REST) and the CLI's exit code all come from ``verticals.core.errors``;
and retry means one thing everywhere, a queued job included."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.fixture
def registry(fixtures_only_registry):
    return fixtures_only_registry


def _errors() -> list[BaseException]:
    """One instance of every error of the table, and of the tenancy errors that carry their meaning."""
    from verticals.core.errors import expected_errors
    from verticals.core.jobs.predict import TooManyItems
    from verticals.core.models.sources import ModelUnavailable
    from verticals.registry import HookError
    from verticals.tenancy.quotas import QuotaExceeded
    from verticals.tenancy.tenants import TenantError

    special = {TooManyItems: TooManyItems(5, 2), ModelUnavailable: ModelUnavailable("m", [("local", "no file")]),
               HookError: HookError("plug", "prepare_items", RuntimeError("boom"))}
    made = [special.get(cls) or cls(f"refused: {cls.__name__}") for cls in expected_errors()]
    return [*made, QuotaExceeded("over the quota", 30), TenantError("no such tenant")]


def test_every_expected_error_has_one_meaning(registry):
    from verticals.core.errors import meaning_of

    errors = _errors()
    assert len({type(error) for error in errors}) == len(errors) >= 14
    assert all(meaning_of(error) is not None for error in errors)
    assert meaning_of(KeyError("x")) is None and meaning_of(RuntimeError("bug")) is None  # bugs propagate
    by_name = {type(error).__name__: meaning_of(error) for error in errors}
    assert {name: meaning.status for name, meaning in by_name.items() if meaning} == {
        "JobError": 422, "InputError": 422, "EvalError": 422, "PluginError": 422, "HookError": 500,
        "TooManyItems": 413, "JobNotFound": 404, "JobConflict": 409, "StoreFull": 507, "ExecutorUnavailable": 503,
        "ModelUnavailable": 503, "DatabaseNotReady": 503, "SecretKeyError": 503, "QuotaExceeded": 429,
        "TenantError": 422}


def test_the_api_the_sdk_and_the_cli_read_the_same_table(registry, monkeypatch):
    """Each error raised in a route, in a call of the in-process SDK and under the CLI's handler: the same
    status in the first two, the table's exit code in the third."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from verticals.api.errors import add_error_handlers
    from verticals.cli.common import _handle
    from verticals.client import Client, InputRefused, VerticalsError
    from verticals.core.errors import meaning_of

    errors = {type(error).__name__: error for error in _errors()}
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/raise/{name}")
    def raising(name: str) -> None:
        raise errors[name]

    monkeypatch.setenv("VERTICALS_LOAD_PLUGINS", "fixtures")
    with TestClient(app, raise_server_exceptions=False) as http, Client() as local:
        for name, error in errors.items():
            meaning = meaning_of(error)
            assert meaning is not None
            answer = http.get(f"/raise/{name}")
            assert answer.status_code == meaning.status, name
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["detail"] == (meaning.detail or str(error))  # operator problems: a safe detail
            if name == "QuotaExceeded":
                assert answer.headers["Retry-After"] == "30"

            def fail(error=error):
                raise error

            with pytest.raises(VerticalsError) as raised:
                local._backend._call(fail)
            assert raised.value.status_code == meaning.status, name
            assert isinstance(raised.value, InputRefused) == (meaning.status in (413, 422)), name
            assert _handle(error).exit_code == meaning.exit_code == 2, name
    with pytest.raises(RuntimeError, match="a bug"):  # not in the table: raised as it is, everywhere
        _handle(RuntimeError("a bug"))


def test_retry_of_a_queued_job_is_one_conflict_in_process_over_rest_and_in_the_cli(registry):
    """A job still queued (stored, no executor has taken it yet): retry is 409 over REST and in-process (it
    used to re-dispatch the job over REST only), exit 2 in the CLI; the job is left as it was."""
    from fastapi.testclient import TestClient

    from verticals.api.app import create_app
    from verticals.client import Client, VerticalsError
    from verticals.core.store import open_store
    from verticals.tenancy.tenants import Tenants

    store = open_store()  # the database of this test (VERTICALS_DATABASE_URL), which the SDK and the CLI open too
    key = Tenants(store).create_key("acme", "test").token
    with TestClient(create_app(store, registry, auth=True, background=False)) as http:  # nothing runs jobs
        http.headers["Authorization"] = f"Bearer {key}"
        created = http.post("/v1/jobs", json={"task": "fixtures.echo", "items": [{"text": "a"}, {"text": "b"}]})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        remote = Client("http://testserver", api_key=key)
        remote._backend.http = http  # the SDK's REST calls, answered by the app in this process
        with pytest.raises(VerticalsError, match="is queued") as over_rest:
            remote.job(job_id).retry()
        with Client() as local, pytest.raises(VerticalsError, match="is queued") as in_process:
            local.job(job_id).retry()
        assert over_rest.value.status_code == in_process.value.status_code == 409
        assert str(over_rest.value).startswith(f"HTTP 409: {in_process.value}. Over the API: ")  # + API terms
    cli = run_cli("jobs", "retry", job_id[:12])
    assert cli.returncode == 2 and f"job {job_id} is queued" in cli.stderr, cli.stderr
    summary = store.summary(job_id)
    assert summary["status"] == "queued" and summary["counts"] == {"pending": 2}
