"""``verticals plugins ...``: list, install and uninstall domain plugins."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Annotated

import typer

from verticals.cli.common import _fail, _registry, err, out
from verticals.cli.listing import print_rows

plugins_app = typer.Typer(help="List, install and uninstall domain plugins.", no_args_is_help=True)


@plugins_app.command("list")
def plugins_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Installed plugins: name, version, hooks, tasks, status (quarantined ones with their error)."""
    registry = _registry()
    plugins = [p.as_dict() for p in registry.plugins.values()]
    if as_json:
        out.print_json(json.dumps(plugins))
        return
    rows = []
    for plugin in plugins:
        style = "green" if plugin["status"] == "loaded" else "red" if plugin["status"] != "disabled" else "dim"
        rows.append((plugin["name"], plugin["version"] or "", f"[{style}]{plugin['status']}[/{style}]",
                     ", ".join(plugin["tasks"]), ", ".join(plugin["models"]), ", ".join(plugin["hooks"])))
    print_rows(out, ("plugin", "version", "status", "tasks", "models", "hooks"), rows,
               prose=("tasks", "models", "hooks"))
    for plugin in plugins:
        if plugin["error"] and plugin["status"] != "disabled":
            err.print(f"[red]{plugin['name']}[/red]: {plugin['error']}")


@plugins_app.command("install")
def plugins_install(
    target: Annotated[list[str], typer.Argument(help="Distribution name(s) or path(s), as pip takes them.")],
    editable: Annotated[bool, typer.Option("--editable", "-e", help="Install a local path in editable mode.")] = False,
    upgrade: Annotated[bool, typer.Option("--upgrade", "-U", help="Upgrade if installed.")] = False,
) -> None:
    """Install plugins with pip into this environment, then run their post-install steps."""
    command = [sys.executable, "-m", "pip", "install"] + (["--upgrade"] if upgrade else [])
    for item in target:
        command += ["-e", item] if editable else [item]
    err.print(f"[dim]$ {' '.join(command)}[/dim]")
    if subprocess.call(command) != 0:
        raise _fail("pip install failed (see its output above)", 1)
    if subprocess.call([sys.executable, "-m", "verticals.cli", "plugins", "post-install"]) != 0:
        raise _fail("a plugin's post-install step failed (see above)", 1)
    subprocess.call([sys.executable, "-m", "verticals.cli", "plugins", "list"])


@plugins_app.command("post-install")
def plugins_post_install(name: Annotated[list[str] | None, typer.Argument(help="Only these plugins.")] = None) -> None:
    """Run installed plugins' post-install steps (entry points `verticals.post_install`); idempotent."""
    import importlib.metadata

    for entry_point in importlib.metadata.entry_points(group="verticals.post_install"):
        if name and entry_point.name not in name:
            continue
        err.print(f"post-install: {entry_point.name}")
        entry_point.load()()


@plugins_app.command("uninstall")
def plugins_uninstall(target: Annotated[list[str], typer.Argument(help="Distribution name(s).")]) -> None:
    """Uninstall plugins with pip."""
    command = [sys.executable, "-m", "pip", "uninstall", "-y", *target]
    err.print(f"[dim]$ {' '.join(command)}[/dim]")
    raise typer.Exit(subprocess.call(command))
