"""``verticals models list|warm``: model specs, where their weights resolve from; pre-loading them.

(``models list|promote|rollback`` over the model store are added by :mod:`verticals.cli.train`.)
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from verticals.cli.common import _registry, err, out

models_app = typer.Typer(help="Model specs: where weights resolve from; pre-load them.", no_args_is_help=True)


@models_app.command("list")
def models_list() -> None:
    """Registered model specs and where each resolves now (nothing is loaded)."""
    from verticals.core.models import ModelHost, ModelUnavailable

    registry = _registry()
    host = ModelHost(registry.models)
    table = Table("model", "kind", "resolves to", "description")
    for name, spec in sorted(registry.models.items()):
        try:
            source = host.resolve(name)
            where = f"{source.kind}: {source.reference}" + (f" @ {source.revision}" if source.revision else "")
        except ModelUnavailable as error:
            where = f"[red]unavailable ({len(error.attempts)} sources tried)[/red]"
        table.add_row(name, spec.kind, where, spec.description)
    out.print(table)


@models_app.command("warm")
def models_warm(names: Annotated[list[str] | None, typer.Argument(help="Model names (default: all).")] = None) -> None:
    """Resolve and load models now (downloads them into the cache when a hub is reachable)."""
    from verticals.core.models import ModelHost

    registry = _registry()
    host = ModelHost(registry.models)
    failed = 0
    for name in names or sorted(registry.models):
        try:
            with err.status(f"loading {name}..."):
                model = host.get(name)
            err.print(f"[green]ok[/green] {name}: {model.source.kind} {model.source.reference} on {model.device} "
                      f"({model.precision.label()}, {host.load_seconds.get(name, 0):.1f}s)")
        except Exception as error:
            failed += 1
            err.print(f"[red]failed[/red] {name}: {error}")
    raise typer.Exit(1 if failed else 0)
