"""A behaviour test for every hook: small real plugins attached to a built registry, real jobs through
``verticals.core.jobs.engine`` (submit_job + run_chunk) with the model-free ``fixtures.echo`` task.

``fixtures.echo`` upper-cases ``text``; its chunks hold 10 items and its batches 4.
"""

from __future__ import annotations

import logging
import types

import pytest
import typer
from pydantic import BaseModel
from typer.testing import CliRunner

from tests.conftest import run_cli
from verticals.contract import ItemError, JobStatus, Task, hookimpl
from verticals.core.jobs.engine import run_chunk, submit_job
from verticals.core.models.host import ModelHost
from verticals.core.store import open_store
from verticals.registry import HookError, PluginError, build_registry


@pytest.fixture
def store(tmp_path):
    return open_store(f"sqlite:///{tmp_path / 'hooks.db'}")


def plugin(name: str, **hooks) -> types.SimpleNamespace:
    """A plugin object whose attributes are hook implementations."""
    return types.SimpleNamespace(__name__=name, **{hook: hookimpl(fn) for hook, fn in hooks.items()})


def run_job(store, registry, texts, task="fixtures.echo"):
    """Submit a job and run all its chunks in this process, as the local executor does."""
    job_id = submit_job(store, registry, task, [{"text": t} for t in texts])
    host = ModelHost(registry.models)
    size = registry.task(task).chunk_size
    for start in range(0, len(texts), size):
        run_chunk(store, registry, host, job_id, start, min(start + size, len(texts)))
    return job_id


def items(store, job_id):
    return list(store.iter_items(job_id))


# --------------------------------------------------------------------------------------------- prepare_items


def test_two_redacting_prepare_items_plugins_both_apply_in_pluggys_order(store, registry):
    calls = []

    def redactor(word, mark):
        def prepare_items(task, items):
            calls.append((mark, [item.text for item in items]))
            return [item.model_copy(update={"text": item.text.replace(word, mark)}) for item in items]

        return prepare_items

    registry.attach(plugin("redact_alice", prepare_items=redactor("alice", "[A]")))
    registry.attach(plugin("redact_bob", prepare_items=redactor("bob", "[B]")))

    job_id = run_job(store, registry, ["alice met bob", "bob alone", "nobody"])

    assert [i.output["upper"] for i in items(store, job_id)] == ["[A] MET [B]", "[B] ALONE", "NOBODY"]
    # pluggy's call order: the plugin registered last runs first; the next one receives its result
    assert [mark for mark, _ in calls] == ["[B]", "[A]"]
    assert calls[1][1] == ["alice met [B]", "[B] alone", "nobody"]  # chained: the second sees the first's result
    assert store.summary(job_id)["status"] == JobStatus.SUCCEEDED


def test_prepare_items_order_follows_tryfirst_and_trylast(store, registry):
    order = []

    def marker(mark):
        def prepare_items(items):
            order.append(mark)
            return [item.model_copy(update={"text": item.text + mark}) for item in items]

        return prepare_items

    registry.attach(types.SimpleNamespace(prepare_items=hookimpl(tryfirst=True)(marker("1"))), name="first")
    registry.attach(types.SimpleNamespace(prepare_items=hookimpl(trylast=True)(marker("4"))), name="last")
    registry.attach(plugin("older", prepare_items=marker("3")))
    registry.attach(plugin("newer", prepare_items=marker("2")))

    job_id = run_job(store, registry, ["x"])

    assert order == ["1", "2", "3", "4"]
    assert items(store, job_id)[0].output["upper"] == "X1234"


def test_prepare_items_returning_none_leaves_the_batch_and_dicts_are_validated_as_inputs(store, registry):
    registry.attach(plugin("observer", prepare_items=lambda task, items: None))
    registry.attach(plugin("as_dicts", prepare_items=lambda items: [{"text": i.text + "!"} for i in items]))

    job_id = run_job(store, registry, ["a", "b"])

    assert [i.output["upper"] for i in items(store, job_id)] == ["A!", "B!"]


def test_a_raising_prepare_items_fails_only_its_batch_naming_the_plugin(store, registry, caplog):
    def prepare_items(items):
        if any("BOOM" in item.text for item in items):
            raise RuntimeError("cannot redact this batch")

    registry.attach(plugin("fragile", prepare_items=prepare_items))
    texts = ["BOOM"] + [f"item {i}" for i in range(7)]  # two batches of 4 (run in length order)

    with caplog.at_level(logging.WARNING):
        job_id = run_job(store, registry, texts)

    failed = [i for i in items(store, job_id) if i.status == "failed"]
    succeeded = [i for i in items(store, job_id) if i.status == "succeeded"]
    assert len(failed) == 4 and len(succeeded) == 4
    assert 0 in {i.seq for i in failed}
    assert {i.error for i in failed} == {
        "plugin fragile failed in prepare_items: RuntimeError: cannot redact this batch"}
    assert store.summary(job_id)["status"] == JobStatus.PARTIAL  # the job went on with the next batch
    assert "plugin fragile failed in prepare_items" in caplog.text
    assert "BOOM" not in caplog.text  # never item contents in the log


def test_a_raising_hook_on_a_sensitive_task_stores_no_message(store, registry):
    echo = registry.task("fixtures.echo")

    class SecretEcho(Task):
        """``fixtures.echo`` on sensitive inputs."""

        name = "hooks.secret"
        sensitive = True
        Input, Output = echo.Input, echo.Output

        def run(self, batch, models, ctx):
            return [self.Output(upper=item.text.upper(), length=len(item.text)) for item in batch]

    def prepare_items(items):
        raise ValueError(f"could not parse {items[0].text}")  # a message quoting the input

    registry.attach(plugin("secret_tasks", register_tasks=lambda register: register(SecretEcho)))
    registry.attach(plugin("leaky", prepare_items=prepare_items))

    job_id = run_job(store, registry, ["patient John Doe"], task="hooks.secret")

    [item] = items(store, job_id)
    assert item.status == "failed"
    assert item.error == "plugin leaky failed in prepare_items: ValueError"


def test_prepare_items_changing_the_batch_length_fails_the_batch(store, registry):
    registry.attach(plugin("dropper", prepare_items=lambda items: items[1:]))

    job_id = run_job(store, registry, ["a", "b", "c"])

    assert {i.error for i in items(store, job_id)} == {
        "plugin dropper failed in prepare_items: returned 2 items for a batch of 3"}


def test_prepare_items_returning_an_invalid_input_fails_the_batch(store, registry):
    registry.attach(plugin("blanker", prepare_items=lambda items: [{"text": ""} for _ in items]))

    job_id = run_job(store, registry, ["secret words"])

    [item] = items(store, job_id)
    assert item.error.startswith("plugin blanker failed in prepare_items: returned an item that is not a valid "
                                 "input: text:")
    assert "secret" not in item.error


# ---------------------------------------------------------------------------------------------- finish_items


def test_finish_items_sees_inputs_and_outputs_and_may_replace_one(store, registry):
    seen = []

    def finish_items(task, items, outputs):
        seen.append((task.name, [i.text for i in items], [type(o).__name__ for o in outputs]))
        for index, item in enumerate(items):
            if item.text == "redact me":
                outputs[index] = ItemError("output withheld by policy")
            elif item.text == "rewrite":
                outputs[index] = task.Output(upper="REWRITTEN", length=0)

    registry.attach(plugin("policy", finish_items=finish_items))

    job_id = run_job(store, registry, ["keep", "redact me", "rewrite"])

    assert seen and seen[0][0] == "fixtures.echo"
    assert sorted(seen[0][1]) == ["keep", "redact me", "rewrite"]
    assert seen[0][2] == ["EchoOutput"] * 3
    stored = items(store, job_id)
    assert [(i.status, i.output and i.output["upper"], i.error) for i in stored] == [
        ("succeeded", "KEEP", None), ("failed", None, "output withheld by policy"),
        ("succeeded", "REWRITTEN", None)]


def test_a_raising_finish_items_fails_its_batch_and_stores_no_output(store, registry):
    def finish_items(items, outputs):
        if any(item.text == "bad" for item in items):
            raise KeyError("policy")

    registry.attach(plugin("auditor", finish_items=finish_items))

    job_id = run_job(store, registry, ["bad", "x1", "x2", "x3", "longer one", "longer two"])

    by_status = {}
    for item in items(store, job_id):
        by_status.setdefault(item.status, []).append(item)
    assert len(by_status["failed"]) == 4 and len(by_status["succeeded"]) == 2
    assert all(i.output is None for i in by_status["failed"])
    assert {i.error for i in by_status["failed"]} == {"plugin auditor failed in finish_items: KeyError: 'policy'"}


# ------------------------------------------------------------------------------------------------- job hooks


def test_job_submitted_and_job_finished_fire_once_per_job(store, registry):
    submitted, finished = [], []
    registry.attach(plugin("listener", job_submitted=lambda job: submitted.append(job),
                           job_finished=lambda job: finished.append(job)))

    first = run_job(store, registry, [f"t{i}" for i in range(25)])  # three chunks
    second = run_job(store, registry, ["one"])

    assert [job["id"] for job in submitted] == [first, second]
    assert submitted[0]["task"] == "fixtures.echo" and submitted[0]["status"] == JobStatus.QUEUED
    assert [job["id"] for job in finished] == [first, second]
    assert finished[0]["status"] == JobStatus.SUCCEEDED and finished[0]["counts"] == {"succeeded": 25}


def test_raising_job_hooks_are_logged_with_the_plugin_and_never_break_the_job(store, registry, caplog):
    def explode(job):
        raise ConnectionError("receiver down")

    finished = []
    registry.attach(plugin("listener", job_finished=lambda job: finished.append(job["id"])))
    registry.attach(plugin("flaky", job_submitted=explode, job_finished=explode))

    with caplog.at_level(logging.WARNING, logger="verticals.registry"):
        job_id = run_job(store, registry, ["a", "b"])

    assert store.summary(job_id)["status"] == JobStatus.SUCCEEDED
    assert finished == [job_id]  # the other plugin still got the event
    assert "plugin flaky failed in job_submitted: ConnectionError" in caplog.text
    assert "plugin flaky failed in job_finished: ConnectionError" in caplog.text
    failures = registry.fire_job_finished(store.summary(job_id))
    assert [(f.plugin, f.hook, type(f.error)) for f in failures] == [("flaky", "job_finished", ConnectionError)]


# -------------------------------------------------------------------------------------------- registration


def test_register_models_raising_quarantines_the_plugin(use_plugins):
    use_plugins("good", "badmodels")
    registry = build_registry()

    info = registry.plugins["badmodels"]
    assert info.status == "quarantined"
    assert info.error == "register_models failed: RuntimeError: model catalogue unreadable"
    assert "badmodels.half" not in registry.models  # registered before the raise: not kept
    assert "badmodels.never" not in registry.tasks  # its register_tasks is not called
    assert info.models == [] and info.tasks == []
    assert "fixtures.echo" in registry.tasks  # the others load


def test_plugins_list_shows_the_register_models_quarantine(use_plugins):
    import json

    use_plugins("good", "badmodels")
    result = run_cli("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["badmodels"]["status"] == "quarantined"
    assert "register_models failed" in listed["badmodels"]["error"]


def test_register_models_raising_is_an_error_in_strict_mode(use_plugins, monkeypatch):
    use_plugins("badmodels")
    monkeypatch.setenv("VERTICALS_STRICT_PLUGINS", "1")
    with pytest.raises(RuntimeError, match="model catalogue unreadable"):
        build_registry()


def test_register_tasks_and_register_models_of_an_attached_plugin(registry):
    class In(BaseModel):
        text: str

    class Shout(Task):
        name = "hooks.shout"
        Input = Output = In

    from verticals.contract import ModelSpec

    spec = ModelSpec(name="hooks.encoder", kind="encoder", hub_id="org/encoder")
    info = registry.attach(plugin("extra", register_tasks=lambda register: register(Shout),
                                  register_models=lambda register: register(spec)))
    assert registry.task("hooks.shout") is Shout and registry.task_plugin["hooks.shout"] is info
    assert registry.models["hooks.encoder"] is spec
    assert (info.tasks, info.models, info.status) == (["hooks.shout"], ["hooks.encoder"], "loaded")


def test_register_tasks_raising_in_an_attached_plugin_is_refused(registry):
    def register_tasks(register):
        raise ValueError("nope")

    with pytest.raises(PluginError, match="register_tasks failed: ValueError: nope"):
        registry.attach(plugin("bad_extra", register_tasks=register_tasks))
    assert registry.plugins["bad_extra"].status == "quarantined"
    assert not registry.manager.has_plugin("bad_extra")


def test_attach_is_idempotent_and_takes_a_dotted_name(registry, monkeypatch):
    import sys

    module = types.ModuleType("hooks_dotted_extra")
    module.job_finished = hookimpl(lambda job: None)
    monkeypatch.setitem(sys.modules, "hooks_dotted_extra", module)
    before = len(registry.manager.hook.job_finished.get_hookimpls())
    first = registry.attach("hooks_dotted_extra")
    again = registry.attach("hooks_dotted_extra")
    assert first is again and first.status == "loaded" and "job_finished" in first.hooks
    assert len(registry.manager.hook.job_finished.get_hookimpls()) == before + 1


def test_a_webhook_outbox_is_an_instance_a_root_attaches_in_place_of_the_last(registry, tmp_path):
    """The outbox a composition root builds (verticals.tenancy.webhooks.Outbox) is attached as an object; a
    newer one takes its place (attach_to: replace=True); an outbox attached twice is attached once."""
    from verticals.tenancy.webhooks import PLUGIN_NAME, Outbox

    before = len(registry.manager.hook.job_finished.get_hookimpls())
    first = Outbox(open_store(f"sqlite:///{tmp_path / 'a.db'}"))
    assert first.attach_to(registry) is first and first.attach_to(registry) is first
    assert registry.manager.get_plugin(PLUGIN_NAME) is first
    assert "job_finished" in registry.plugins[PLUGIN_NAME].hooks
    second = Outbox(open_store(f"sqlite:///{tmp_path / 'b.db'}")).attach_to(registry)
    assert registry.manager.get_plugin(PLUGIN_NAME) is second and not registry.manager.is_registered(first)
    assert len(registry.manager.hook.job_finished.get_hookimpls()) == before + 1
    registry.attach(Outbox(), name=PLUGIN_NAME)  # without replace: the name's plugin stays (idempotent, as before)
    assert registry.manager.get_plugin(PLUGIN_NAME) is second


def test_a_hook_wrapper_is_refused(registry):
    def prepare_items(items):
        return (yield)

    wrapper = types.SimpleNamespace(prepare_items=hookimpl(wrapper=True)(prepare_items))
    with pytest.raises(PluginError, match="hook wrapper on prepare_items"):
        registry.attach(wrapper, name="wrapping")


def test_register_commands_adds_a_cli_command_and_a_failing_plugin_is_attributed(registry, caplog):
    app = typer.Typer()

    @app.command()
    def version() -> None:
        typer.echo("core")

    def add_hello(cli):
        @cli.command()
        def hello(name: str) -> None:
            typer.echo(f"hello {name}")

    def broken(cli):
        raise ImportError("missing optional dependency")

    registry.attach(plugin("greeter", register_commands=add_hello))
    registry.attach(plugin("cmd_broken", register_commands=broken))

    with caplog.at_level(logging.WARNING, logger="verticals.registry"):
        failures = registry.hook.register_commands(cli=app)  # how the CLI calls it

    assert failures == []  # pluggy's shape: the failures are logged, not raised
    assert "plugin cmd_broken failed in register_commands: ImportError" in caplog.text
    result = CliRunner().invoke(app, ["hello", "ada"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello ada\n"
    assert isinstance(registry.register_commands(typer.Typer())[0], HookError)
