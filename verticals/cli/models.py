"""``verticals models list|warm|optimize|runtimes``: model specs, where their weights resolve from; pre-loading
them; ONNX Runtime variants built and kept behind a quality gate (:mod:`verticals.core.models.runtimes`).

(``models list|promote|rollback``, with the model store's versions, are added by :mod:`verticals.cli.train`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from verticals.cli.common import UserError, _fail, _handle, _registry, err, out

models_app = typer.Typer(help="Model specs: where weights resolve from; pre-load them.", no_args_is_help=True)


@models_app.command("warm")
def models_warm(
    names: Annotated[list[str] | None, typer.Argument(help="Model names (default: all).")] = None,
    choose_runtime: Annotated[bool, typer.Option(
        help="For a model that ships calibration texts and runs with runtime auto on the CPU: build and judge "
             "its ONNX variants (fp32, int8) here once, so that auto serves the fastest that agrees with PyTorch.")]
    = True,
) -> None:
    """Resolve and load models now (downloads them into the cache when a hub is reachable).

    Run it on each worker machine before jobs arrive. A model that ships calibration texts (finance.sentiment)
    also gets its runtime chosen for this CPU the first time (a minute or two per model; later runs read the
    records): each ONNX variant is kept only if its labels agree with PyTorch's on those texts (98 % at 95 %
    confidence) and it is faster here. `verticals models runtimes NAME` shows the records."""
    from verticals.core.models.host import ModelHost

    registry = _registry()
    host = ModelHost(registry.models)
    failed = 0
    for name in names or sorted(registry.models):
        if choose_runtime:
            failed += _choose_runtime(registry, name)
        try:
            with err.status(f"loading {name}..."):
                model = host.get(name)
            err.print(f"[green]ok[/green] {name}: {model.source.kind} {model.source.reference} on {model.device} "
                      f"({model.runtime_label} {model.precision_label}, {host.load_seconds.get(name, 0):.1f}s)")
        except Exception as error:
            failed += 1
            err.print(f"[red]failed[/red] {name}: {error}")
    raise typer.Exit(1 if failed else 0)


def _choose_runtime(registry: Any, name: str) -> int:
    """``models warm``'s runtime choice for one model (see :func:`verticals.core.models.optimize.choose_runtimes`);
    1 when it failed (the model then stays on PyTorch), else 0."""
    from verticals.core.models.optimize import choosable, choose_runtimes

    spec = registry.models.get(name)
    if spec is None or choosable(spec) is not None:
        return 0
    try:
        with err.status(f"choosing the runtime of {name} on this CPU...") as status:
            records = choose_runtimes(name, registry=registry, on_step=lambda message: status.update(message + "..."))
    except Exception as error:
        err.print(f"[red]failed[/red] {name}: choosing its runtime: {error} (it runs on PyTorch)")
        return 1
    for record in records:
        parity = record.get("parity", {})
        agreement = (f", labels agree on {parity['agreement']:.1%} of {parity.get('texts')} texts"
                     if "agreement" in parity else "")
        decision = ("[green]kept[/green]" if record["decision"] == "kept"
                    else "[yellow]rejected[/yellow]: " + escape("; ".join(record.get("reasons") or ())))
        err.print(f"  {name} {record['variant']}: {record['speedup']:.2f}x PyTorch here{agreement}: {decision}")
    return 0


def _figure(value: Any, fmt: str = ".4f") -> str:
    return "-" if value is None else format(value, fmt)


@models_app.command("optimize")
def models_optimize(
    spec: Annotated[str, typer.Argument(help="Model spec, e.g. finance.sentiment.")],
    runtime: Annotated[str, typer.Option(help="Runtime of the variant (onnx).")] = "onnx",
    quantize: Annotated[str, typer.Option(help="int8 (dynamic, per-channel weights) or none (fp32).")] = "none",
    budget: Annotated[float, typer.Option(help="Largest drop of the task's main metric kept, in points.")] = 0.5,
    min_agreement: Annotated[float, typer.Option(help="Smallest share of unchanged labels (parity).")] = 0.98,
    min_cosine: Annotated[float, typer.Option(help="Encoders: smallest cosine to PyTorch's embeddings.")] = 0.99,
    min_speedup: Annotated[float, typer.Option(help="Smallest speed-up over PyTorch kept (1: faster).")] = 1.0,
    task: Annotated[str | None, typer.Option(help="Task whose evaluator gates it (default: the one using SPEC).")]
    = None,
    data: Annotated[Path | None, typer.Option(help="Labelled file for the metric part of the gate (without it: "
                                                   "parity and speed on the model's calibration texts, else the "
                                                   "golden set's texts, labels unread).")]
    = None,
    gold_column: Annotated[str | None, typer.Option(help="Gold label column of --data.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Text column of --data.")] = None,
    rebuild: Annotated[bool, typer.Option(help="Export again even when the variant is cached.")] = False,
) -> None:
    """Build an ONNX Runtime variant of SPEC, gate it against PyTorch, record the decision in the model store.

    The variant is kept only when the task's main metric on --data (your labelled file; never the golden set, which
    stays a measure) drops by at most --budget points, the outputs agree (--min-agreement of labels unchanged, on
    --data's texts or the golden set's) and it is faster here (--min-speedup). With
    VERTICALS_RUNTIME=auto (the default) the fastest kept variant then serves SPEC on this machine.
    Exit 0: kept; 3: rejected.
    """
    from verticals.core.models.optimize import optimize
    from verticals.core.models.runtimes import RuntimeUnavailable

    if runtime.lower() != "onnx":
        raise _fail(f"unknown runtime {runtime!r}: onnx is the one runtime variants are built for")
    precision = quantize.lower()
    if precision not in ("none", "fp32", "int8"):
        raise _fail(f"unknown quantization {quantize!r}: use int8 or none")
    try:
        registry = _registry()
        if spec not in registry.models:
            raise UserError(f"unknown model {spec!r}; registered models: {', '.join(sorted(registry.models))}")
        with err.status(f"optimizing {spec}...") as status:
            record = optimize(spec, quantize=None if precision in ("none", "fp32") else precision, budget=budget,
                              min_agreement=min_agreement, min_cosine=min_cosine, min_speedup=min_speedup,
                              task=task, data=data,
                              gold=gold_column, text_column=text_column, registry=registry, rebuild=rebuild,
                              on_step=lambda message: status.update(message + "..."))
    except (RuntimeUnavailable, ValueError) as error:
        raise _fail(str(error)) from None
    except Exception as error:
        raise _handle(error) from None
    _print_record(spec, record)
    raise typer.Exit(0 if record["decision"] == "kept" else 3)


def _texts(record: dict[str, Any]) -> str:
    """The texts parity was checked on, in words: the evaluated items plus the fixed probe sentences (a 90-item
    golden set reads "93 texts (the 90 evaluated + 3 probes)", not a count the user cannot place)."""
    from verticals.core.models.inference import PARITY_PROBES

    total = int(record["parity"]["texts"])
    evaluated = total - len(PARITY_PROBES)
    if record.get("metric") and evaluated > 0:
        return f"{total} texts (the {evaluated} evaluated + {len(PARITY_PROBES)} probes)"
    return f"{total} texts"


def _print_record(spec: str, record: dict[str, Any]) -> None:
    table = Table("", "PyTorch", record["variant"], title=f"{spec}: {record['variant']} vs PyTorch",
                  title_justify="left")
    table.add_row("precision", record["torch_precision"], record["precision"])
    table.add_row("items/s", f"{record['torch_items_per_s']:.1f}", f"{record['items_per_s']:.1f}")
    if record.get("metric"):
        table.add_row(f"{record['metric']} ({record['data']})", _figure(record["before"]), _figure(record["after"]))
    err.print(table)
    parity = record["parity"]
    checks = [f"speed-up {record['speedup']:.2f}x"]
    if record.get("drop_points") is not None:
        checks.append(f"{record['metric']} drop {record['drop_points']:.2f} points "
                      f"(budget {record['budget_points']:g})")
    if "agreement" in parity:
        checks.append(f"labels agree on {parity['agreement']:.1%} of {_texts(record)}")
    if "max_prob_drift" in parity:
        checks.append(f"max probability drift {parity['max_prob_drift']:.4f}")
    if "min_cosine" in parity:
        checks.append(f"min cosine {parity['min_cosine']:.4f}")
    err.print("; ".join(checks))
    if record["decision"] == "kept":
        err.print(f"[green]kept[/green]: {record['variant']} serves {spec} on this machine with VERTICALS_RUNTIME=auto "
                  f"({record['path']} in the model store)")
    else:
        err.print(f"[red]rejected[/red]: {'; '.join(record['reasons'])} (recorded; PyTorch keeps serving {spec})")


@models_app.command("runtimes")
def models_runtimes(spec: Annotated[str | None, typer.Argument(help="Model spec (default: all).")] = None) -> None:
    """ONNX variants built by `models optimize`, with their gate figures and decision."""
    from verticals.core.models.runtimes import load_records, machine, same_machine
    from verticals.core.models.versions import ModelStore

    specs = [spec] if spec else ModelStore().specs()
    here = machine()
    records = []
    for name in specs:
        for record in load_records(name):
            decision = record.get("decision", "")
            metric = record.get("metric")
            records.append({
                "model": name, "variant": record.get("variant", ""),
                "decision": f"[green]{decision}[/green]" if decision == "kept" else f"[red]{decision}[/red]",
                "speed-up": f"{record.get('speedup', 0):.2f}x",
                "metric": f"{metric} {_figure(record.get('before'))} -> {_figure(record.get('after'))}"
                          if metric else "-",
                "agreement": _figure(record.get("parity", {}).get("agreement"), ".1%"),
                "this machine": "yes" if same_machine(record.get("machine", {}), here) else "no",
                "at": str(record.get("at", ""))[:16].replace("T", " "),
            })
    if not records:
        err.print("no runtime variants recorded" + (f" for {spec}" if spec else "")
                  + ": build one with `verticals models optimize SPEC --runtime onnx`")
        return
    columns = list(records[0])
    widths = {c: max(len(c), *(len(Text.from_markup(r[c]).plain) for r in records)) for c in columns}
    if sum(widths.values()) + 3 * len(columns) + 1 > out.width:  # a table would cut every cell: a block each
        for number, row in enumerate(records):
            if number:
                out.print()
            for column in columns:
                out.print(f"{column}: {row[column]}", overflow="fold")
        return
    table = Table(*columns)
    for row in records:
        table.add_row(*(row[c] for c in columns))
    out.print(table)
