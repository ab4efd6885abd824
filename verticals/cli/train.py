"""``verticals train`` and the model-store commands ``verticals models list|promote|rollback``.

Registered on the main app by the core's own hook implementation (``verticals.builtin.register_commands``,
through the ``verticals.cli.train`` re-export).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

_GATE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|>|<)\s*([0-9.]+)\s*$")


def _cli():
    from verticals.cli import common

    return common


def parse_gates(requirements: list[str]) -> list[tuple[str, str, float]]:
    """``macro_f1>=0.85`` -> (metric, operator, threshold)."""
    gates = []
    for text in requirements:
        for part in text.split(","):
            if not part.strip():
                continue
            match = _GATE.match(part)
            if not match:
                hint = ""
                if re.fullmatch(r"\s*[A-Za-z_][A-Za-z0-9_.]*\s*", part):  # `--require macro_f1>=0.85` unquoted
                    hint = (f"; quote it, e.g. --require '{part.strip()}>=0.85' (unquoted, the shell reads > as a "
                            f"redirection: it wrote what follows into a file named like '=0.85')")
                raise _cli().UserError(f"bad --require {part!r}: expected METRIC>=VALUE (or >, <=, <){hint}")
            gates.append((match.group(1), match.group(2), float(match.group(3))))
    return gates


def check_gates(metrics: dict[str, Any], gates: list[tuple[str, str, float]]) -> list[str]:
    """The gates that fail, as messages (a metric that is missing fails its gate)."""
    ops = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}
    failures = []
    for metric, op, threshold in gates:
        value = metrics.get(metric)
        if not isinstance(value, int | float):
            failures.append(f"{metric} was not measured (metrics: {', '.join(sorted(metrics)) or 'none'})")
        elif not ops[op](float(value), threshold):
            failures.append(f"{metric} = {value:.4f}, required {op} {threshold}")
    return failures


def _task_for_spec(registry, spec: str) -> str:
    tasks = sorted(name for name, task in registry.tasks.items() if spec in task.models.values())
    if not tasks:
        raise _cli().UserError(f"no task uses the model {spec!r}")
    return tasks[0]


def _progress_columns():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    cli = _cli()
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}  dev {task.fields[dev]}  best {task.fields[best]}"),
                    TextColumn("ETA"), TimeRemainingColumn(), console=cli.err, transient=False)


def train(
    task: Annotated[str, typer.Argument(help="Task whose classifier to fine-tune, e.g. finance.sentiment.")],
    data: Annotated[Path, typer.Argument(help="Labelled rows: .csv, .jsonl or .parquet.")],
    text_column: Annotated[str, typer.Option(help="Column holding the text.")] = "text",
    pair_column: Annotated[str | None, typer.Option(help="Column holding a second text: the encoder reads the pair "
                                                         "as a cross-encoder ([CLS] text [SEP] pair [SEP]).")]
    = None,
    label_column: Annotated[str, typer.Option("--label-column", "--gold-column", help="Column holding the label.")]
    = "label",
    method: Annotated[str, typer.Option(help="lora (default), head or full.")] = "lora",
    base: Annotated[str | None, typer.Option(help="Encoder model spec (default: the task head's, else minilm).")]
    = None,
    epochs: Annotated[int, typer.Option(help="Passes over the training rows (at most).")] = 3,
    batch_size: Annotated[int, typer.Option(help="Rows per step.")] = 32,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default: lora 1e-3, full 5e-5).")] = None,
    max_length: Annotated[int, typer.Option(help="Tokens per text while training.")] = 128,
    dev_fraction: Annotated[float, typer.Option(help="Stratified dev slice for early stopping.")] = 0.15,
    dev_column: Annotated[str | None, typer.Option(help="Column marking the dev slice (dev, validation or val; "
                                                        "other values train), e.g. whole questions held out, "
                                                        "instead of a stratified random slice.")] = None,
    seed: Annotated[int, typer.Option(help="Seed: split, shuffling, initialisation.")] = 13,
    patience: Annotated[int, typer.Option(help="Stop after this many dev evaluations without improvement.")] = 2,
    evals_per_epoch: Annotated[int, typer.Option(help="Dev evaluations per epoch.")] = 1,
    lora_r: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    lr_decay: Annotated[float, typer.Option(help="Layer-wise learning-rate decay (full, lora): layer k of L at "
                                                 "lr * decay^(L-k), e.g. 0.9; 1: off.")] = 1.0,
    seeds: Annotated[int, typer.Option(help="Runs with seeds SEED, SEED+1, ... on the same dev slice; the best "
                                            "dev metric is kept (full, lora).")] = 1,
    search: Annotated[list[str], typer.Option("--search", help="Grid search KEY=V1,V2,... (repeatable), e.g. "
                                              "lr=1e-3,3e-4: one trial per combination, all on the same dev "
                                              "slice, as the items of one training job; every trial's version "
                                              "is stored and the best dev metric is named.")]
    = [],  # noqa: B006
    format: Annotated[str | None, typer.Option(help="Input format when the extension does not tell.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Other training setting KEY=VALUE (repeatable), e.g. "
                                            "max_steps=600, or a token classifier's layers=3, o_weight=0.5.")]
    = [],  # noqa: B006
    detach: Annotated[bool, typer.Option(help="Only submit the job (workers, or `verticals jobs resume`).")] = False,
) -> None:
    """Fine-tune TASK's model on DATA as a job; the result is a new version in the local model store."""
    cli = _cli()
    job_id = None
    try:
        from verticals.core.io import read_rows
        from verticals.core.models.training import (
            METHODS,
            TRAINERS,
            TrainConfig,
            TrainingError,
            fixed_split,
            prepare_rows,
            search_trials,
            task_labels,
            trained_kind,
        )

        if method not in METHODS:
            raise cli.UserError(f"unknown --method {method!r}: use one of {', '.join(METHODS)}")
        service = cli._service()
        task_cls = service.registry.task(task)
        rows = []
        columns = [c for c in (text_column, pair_column, label_column, dev_column) if c is not None]
        for row in read_rows(data, format):
            missing = [c for c in columns if c not in row]
            if missing:
                raise cli.UserError(f"{data.name} has no column {missing[0]!r} (columns: {', '.join(row)}); "
                                    "use --text-column / --pair-column / --label-column")
            label = row[label_column]  # a token classifier's label is a list of spans
            rows.append({"text": str(row[text_column] or ""),
                         "label": label if isinstance(label, list) else str(label or "")})
            if pair_column is not None:
                rows[-1]["pair"] = str(row[pair_column] or "")
            if dev_column is not None:
                rows[-1]["split"] = str(row[dev_column] or "")
        kind = trained_kind(service.registry, task)
        if pair_column is not None and kind is not None:
            raise cli.UserError(f"--pair-column: {task} trains a {kind}, which reads single texts")
        if dev_column is not None and kind is not None:
            raise cli.UserError(f"--dev-column: {task} trains a {kind}, which draws its own dev slice")
        if kind is None:  # a sequence classifier's rows are checked before a job:
            try:          # an unknown label is an input error (exit 2), as all are
                prepared = prepare_rows(rows, labels=task_labels(task_cls), pair_field="pair" if pair_column else None,
                                        split_field="split" if dev_column else None)
                if dev_column is not None:
                    fixed_split(prepared)
            except TrainingError as error:
                raise cli.UserError(f"{data.name}: {error}") from None
        config = {"method": method, "base": base, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                  "max_length": max_length, "dev_fraction": dev_fraction, "seed": seed, "patience": patience,
                  "evals_per_epoch": evals_per_epoch, "lora_r": lora_r, "lora_alpha": 2 * lora_r,
                  **({"pair_inputs": True} if pair_column else {}), **({"fixed_dev": True} if dev_column else {}),
                  **({"lr_decay": lr_decay} if lr_decay != 1.0 else {}), **({"seeds": seeds} if seeds != 1 else {}),
                  **{k: cli._coerce(v) for k, v in cli._parse_pairs(set_, "--set").items()}}
        if kind is None:  # a configuration the run would refuse is refused here, before a job
            try:
                TrainConfig(**config).validate()
            except TypeError as error:
                raise cli.UserError(f"bad training setting: {error}") from None
            except TrainingError as error:
                raise cli.UserError(str(error)) from None
        grid = {key: [cli._coerce(value.strip()) for value in text.split(",") if value.strip()]
                for key, text in cli._parse_pairs(search, "--search").items()}
        try:  # every trial checked before a job, as a single run is
            trials = search_trials(config, grid, TRAINERS[kind][0] if kind in TRAINERS else TrainConfig) \
                if grid else [config]
        except TrainingError as error:
            raise cli.UserError(str(error)) from None
        unit = "pairs" if pair_column else "rows"

        def stored(new_job: str) -> None:
            nonlocal job_id
            job_id = new_job
            searched = f", {len(trials)} trials" if grid else ""
            cli.err.print(f"[dim]training job {new_job}: {len(rows)} {unit}, method {method}{searched}[/dim]")

        training = [{"task": task, "rows": rows, "config": trial, "data_name": data.name} for trial in trials]
        if detach:
            sent = service.submit_and_start("verticals.train", training, run="detach", on_stored=stored).job_id
            if service.executor.remote:
                cli.err.print(f"sent to the workers; follow with `verticals jobs status {sent[:8]} --json`")
            else:
                cli.out.print(sent)
            return
        status = _run_training(service, training, stored)
        items = list(service.store.iter_items(job_id))
        item = items[0]
    except (Exception, KeyboardInterrupt) as error:
        raise cli._handle(error, job_id) from None
    if all(each.status == "cancelled" for each in items):  # one run, or every trial of a search
        raise cli._fail(f"training cancelled (job {job_id}): no model version was stored", cli._exit_code(status))
    if grid:
        assert job_id is not None  # stored before it ran
        _report_search(job_id, status, grid, trials, items, "f1" if kind else str(config.get("dev_metric",
                                                                                             "macro_f1")))
    if item.status != "succeeded":
        raise cli._fail(f"training failed: {item.error}", 1)
    output = item.output
    dev = output["dev"]
    figures = (f"dev token F1 {dev.get('f1', 0):.4f} (precision {dev.get('precision', 0):.4f}, recall "
               f"{dev.get('recall', 0):.4f})" if "f1" in dev else
               f"dev accuracy {dev.get('accuracy', 0):.4f}, macro-F1 {dev.get('macro_f1', 0):.4f}")
    cli.err.print(f"[green]stored[/green] {output['spec']} [bold]{output['version']}[/bold] ({output['method']}, "
                  f"{output['size_bytes'] / 1024:,.0f} KB, {output['train_seconds']:.0f}s): {figures} "
                  f"on {output['dev_rows']} rows")
    _promote_hint(output)
    sys.stdout.write(json.dumps({"job": job_id, **output}) + "\n")
    raise typer.Exit(cli._exit_code(status))


def _report_search(job_id: str, status: str, grid: dict[str, list[Any]], trials: list[dict[str, Any]], items: list,
                   metric: str) -> None:
    """A search's table (one row per trial), its best trial and the command that promotes it; JSON on stdout."""
    from verticals.cli.listing import print_rows
    from verticals.core.models.training import best_trial, trial_score

    cli = _cli()
    outputs = [item.output if item.status == "succeeded" else None for item in items]
    best = best_trial(outputs, metric)
    rows = []
    for index, (trial, item, output) in enumerate(zip(trials, items, outputs, strict=True)):
        score = trial_score(output, metric)
        rows.append((f"{index + 1}{' *' if index == best else ''}", *(str(trial[key]) for key in grid),
                     f"{score:.4f}" if score is not None else "-",
                     output["version"] if output else item.status, f"{output['train_seconds']:.0f}s" if output
                     else (item.error or "")))
    print_rows(cli.err, ("trial", *grid, f"dev {metric}", "version", "time"), rows, prose=("time",),
               title=f"search: {len(trials)} trials on one dev slice (* best)")
    result = {"job": job_id, "metric": metric, "best": best,
              "trials": [{"settings": {key: trial[key] for key in grid}, "status": item.status,
                          "error": item.error, **(output or {})}
                         for trial, item, output in zip(trials, items, outputs, strict=True)]}
    if best is None:
        first = next((item.error for item in items if item.error), "no trial finished")
        sys.stdout.write(json.dumps(result) + "\n")
        raise cli._fail(f"training failed: no trial finished ({first})", 1)
    chosen = outputs[best]
    assert chosen is not None
    settings = ", ".join(f"{key}={trials[best][key]}" for key in grid)
    cli.err.print(f"[green]best[/green] trial {best + 1} ({settings}): {chosen['spec']} "
                  f"[bold]{chosen['version']}[/bold], dev {metric} {trial_score(chosen, metric):.4f} on "
                  f"{chosen['dev_rows']} rows; every trial's version is in the store (`verticals models list`)")
    _promote_hint(chosen)
    sys.stdout.write(json.dumps(result) + "\n")
    raise typer.Exit(cli._exit_code(status))


def _promote_hint(output: dict[str, Any]) -> None:
    """The `next:` line that promotes a stored version behind a gate on its dev metric (token F1 or macro-F1)."""
    gate = "f1>=0.9" if "f1" in output["dev"] else "macro_f1>=0.8"
    _cli()._copyable("next:", f"verticals models promote {output['spec']} {output['version']} "
                              f"--require '{gate}'")  # quoted: unquoted, the shell reads > as a redirection


def _run_training(service, training: list[dict[str, Any]], stored: Callable[[str], None]) -> str:
    """Submit and run the training job through the job service (which asks the executor first), showing the
    training's own progress (step, loss, dev metric) where it runs in this process."""
    from verticals.core.models.training import listen

    if service.executor.remote:  # on a worker: its progress is not heard here
        return service.submit_and_start("verticals.train", training, run="wait", on_stored=stored).status
    listened: list[str] = []
    with _progress_columns() as progress:
        bar = progress.add_task("train", total=None, loss="-", dev="-", best="-")
        saved = [0]  # trials of a search stored so far

        def show(update) -> None:
            fields = {"loss": f"{update.loss:.4f}" if update.loss is not None else "-",
                      "dev": f"{update.dev:.4f}" if update.dev is not None else "-",
                      "best": f"{update.best_dev:.4f}" if update.best_dev is not None else "-"}
            trial = f" {min(saved[0] + 1, len(training))}/{len(training)}" if len(training) > 1 else ""
            if update.phase == "save":
                saved[0] += 1
            if update.phase == "train":
                progress.update(bar, description=f"train{trial}", total=update.total_steps, completed=update.step,
                                **fields)
            else:
                progress.update(bar, description=f"{update.phase}{trial}", **fields)

        def stored_and_heard(job_id: str) -> None:
            stored(job_id)
            listen(job_id, show)
            listened.append(job_id)

        try:
            return service.submit_and_start("verticals.train", training, run="wait",
                                            on_stored=stored_and_heard).status
        finally:
            for job_id in listened:
                listen(job_id, None)


def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False) -> None:
    """Registered model specs, where each resolves now, and the versions in the local model store."""
    from verticals.cli.listing import print_rows
    from verticals.core.models.host import ModelHost, ModelUnavailable
    from verticals.core.models.versions import ModelStore

    cli = _cli()
    registry = cli._registry()
    host = ModelHost(registry.models)
    specs = []
    for name, spec in sorted(registry.models.items()):
        entry: dict[str, Any] = {"model": name, "kind": spec.kind, "description": spec.description}
        try:
            source = host.resolve(name)
            entry["resolves_to"] = {"source": source.kind, "reference": source.reference, "path": str(source.path),
                                    "revision": source.revision}
        except ModelUnavailable as error:
            entry["resolves_to"] = None
            entry["unavailable"] = [{"source": where, "why": why} for where, why in error.attempts]
        specs.append(entry)
    versions = ModelStore().versions()
    stored = [{"model": v.spec, "version": v.version, "promoted": v.promoted, "method": v.meta.get("method", ""),
               "inputs": v.meta.get("inputs", "text"),
               "created_at": str(v.meta.get("created_at", ""))[:19], "rows": v.meta.get("data", {}).get("rows"),
               "dev": v.meta.get("dev", {}), "size_bytes": v.size_bytes(), "path": str(v.path)} for v in versions]
    if as_json:
        sys.stdout.write(json.dumps({"models": specs, "versions": stored}) + "\n")
        return

    def where(entry: dict[str, Any]) -> str:
        found = entry["resolves_to"]
        if found is None:
            return f"[red]unavailable ({len(entry['unavailable'])} sources tried)[/red]"
        revision = f" @ {found['revision']}" if found["revision"] and found["source"] != "store" else ""
        return f"{found['source']}: {found['reference']}{revision}"

    print_rows(cli.out, ("model", "kind", "resolves to", "description"),
               [(e["model"], e["kind"], where(e), e["description"]) for e in specs], prose=("description",))
    if stored:
        cli.out.print()
        print_rows(cli.out, ("version", "promoted", "method", "created", "rows", "dev accuracy", "dev macro-F1",
                             "size"),
                   [(f"{v['model']}@{v['version']}", "[green]yes[/green]" if v["promoted"] else "no",
                     v["method"] + (" (pairs)" if v["inputs"] == "pair" else ""), v["created_at"],
                     str(v["rows"] or ""), f"{v['dev'].get('accuracy', 0):.4f}",
                     f"{v['dev'].get('macro_f1', 0):.4f}", f"{v['size_bytes'] / 1024:,.0f} KB") for v in stored],
                   title="model store")


def models_promote(
    spec: Annotated[str, typer.Argument(help="Model spec, e.g. finance.sentiment.")],
    version: Annotated[str, typer.Argument(help="Stored version, e.g. v3.")],
    require: Annotated[list[str], typer.Option("--require", help="Gate METRIC>=VALUE (repeatable).")] = [],  # noqa: B006
    data: Annotated[Path | None, typer.Option(help="Labelled file to evaluate the version on for the gate.")] = None,
    gold_column: Annotated[str | None, typer.Option(help="Gold label column of --data (default: label).")] = None,
    text_column: Annotated[str | None, typer.Option(help="Text column of --data.")] = None,
) -> None:
    """Make VERSION the one resolution picks for SPEC (a VERTICALS_MODELS override still wins).

    With --require, the gate runs first: through `verticals eval` on --data (stored as an eval run), else on the
    dev metrics stored with the version (its held-out slice of the training file); never on the task's golden
    set, which stays a measure. A failing gate exits 3 (as `verticals eval --min` does) and promotes nothing.
    """
    from verticals.core.models.versions import ModelStore, ModelStoreError

    cli = _cli()
    try:
        store = ModelStore()
        chosen = store.get(spec, version)
        gates = parse_gates(require)
        if gates:
            metrics, where = _gate_metrics(spec, chosen, data, gold_column, text_column)
            failures = check_gates(metrics, gates)
            if failures:
                raise cli._fail(f"not promoted: {spec} {version} fails the gate on {where}: "
                                + "; ".join(failures), 3)
            cli.err.print(f"[green]gate passed[/green] on {where}: "
                          + ", ".join(f"{m} = {metrics[m]:.4f}" for m, _, _ in gates))
        store.promote(spec, version)
    except ModelStoreError as error:
        raise cli._fail(str(error)) from None
    except Exception as error:
        raise cli._handle(error) from None
    cli.err.print(f"promoted {spec} {version}: `verticals run` now uses it (provenance names {spec}@{version})")


def _gate_metrics(spec: str, chosen, data: Path | None, gold: str | None, text_column: str | None
                  ) -> tuple[dict[str, Any], str]:
    """Metrics for the gate: ``verticals eval`` of the version on --data (stored as an eval run), else the dev
    metrics stored with the version (its own held-out slice of the training file). Never the task's golden set:
    a golden set that chooses which version serves no longer measures it."""
    cli = _cli()
    from verticals.core.evaluation.scoring import EvalError, evaluate

    registry = cli._registry()
    task = _task_for_spec(registry, spec)
    if data is None:
        rows = chosen.meta.get("data", {}).get("dev_rows")
        where = f"its stored dev metrics ({rows} held-out rows of its training file; --data FILE gates on yours)"
        return dict(chosen.meta.get("dev") or {}), where
    try:
        result = evaluate(task, data, gold=gold, text_column=text_column, overrides={spec: str(chosen.path)},
                          registry=registry, save=True)
    except EvalError as error:
        raise cli.UserError(str(error)) from None
    return dict(result.metrics), data.name + (f" (eval run {result.run_id})" if result.run_id else "")


def models_rollback(spec: Annotated[str, typer.Argument(help="Model spec, e.g. finance.sentiment.")]) -> None:
    """Un-promote SPEC's current version: the previously promoted one (or the spec's default sources) takes over."""
    from verticals.core.models.versions import ModelStore, ModelStoreError
    from verticals.registry import did_you_mean, get_registry

    cli = _cli()
    store = ModelStore()
    if store.promoted(spec) is None:  # nothing to undo: the wanted state holds already (a no-op, exit 0)
        known = get_registry().models
        if spec not in known and not store.versions(spec):
            raise cli._fail(f"unknown model {spec!r}{did_you_mean(spec, known)}")
        cli.err.print(f"{spec}: no version is promoted; it serves the spec's own sources already (nothing to roll "
                      "back)")
        return
    try:
        now = store.rollback(spec)
    except ModelStoreError as error:
        raise cli._fail(str(error)) from None
    if now is None:
        cli.err.print(f"{spec}: no promoted version left; resolution uses the spec's own sources again")
    else:
        cli.err.print(f"{spec}: rolled back to {now.version}")


def register(app: typer.Typer) -> None:
    """Add `train` and the model-store commands (`models list` gains the store's versions)."""
    if getattr(app, "_verticals_train_cli", False):
        return
    app._verticals_train_cli = True  # type: ignore[attr-defined]
    app.command("train")(train)
    models_app = next((group.typer_instance for group in app.registered_groups if group.name == "models"), None)
    if models_app is None:
        return
    models_app.registered_commands = [c for c in models_app.registered_commands
                                      if (c.name or getattr(c.callback, "__name__", "")) not in
                                      ("list", "models_list")]
    models_app.command("list")(models_list)
    models_app.command("promote")(models_promote)
    models_app.command("rollback")(models_rollback)
