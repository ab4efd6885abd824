"""``verticals serve`` and ``verticals keys ...`` (registered by :func:`verticals.cli.main`)."""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Annotated

import typer

from verticals.cli.common import err, out
from verticals.cli.listing import print_rows

keys_app = typer.Typer(help="API keys of tenants (REST API auth). A key is shown once; only its hash is stored.",
                       no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhooks of tenants (job.finished / job.failed events).", no_args_is_help=True)


def _tenants():
    from verticals.core.store import open_store
    from verticals.tenancy.tenants import Tenants

    return Tenants(open_store())


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Disable API keys (local use only: loopback host; "
                                                            "every request is tenant 'local').")] = False,
    threads: Annotated[int | None, typer.Option(
        help="Job worker threads in this process (local executor; default VERTICALS_API_THREADS, 2). Tenants take "
             "turns on them; how many each may hold at once: docs/configuration.md.")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    preload: Annotated[bool, typer.Option(
        help="Load the models of the registered tasks before taking requests (the first request does not pay "
             "for loading them).")] = False,
    task: Annotated[list[str] | None, typer.Option(
        "--task", help="With --preload: only this task's models (repeatable; implies --preload).")] = None,
) -> None:
    """Run the REST API, the dashboard (/dashboard) and the webhook deliverer."""
    import uvicorn

    from verticals.api.app import create_app
    from verticals.config import broker_url

    if no_auth and not _is_loopback(host):
        err.print(f"[bold red]error:[/bold red] --no-auth is only for local use; it cannot be combined with "
                  f"--host {host}. Bind to 127.0.0.1, or create API keys: verticals keys create --tenant T --name N")
        raise typer.Exit(2)
    if no_auth:
        err.print("[bold red]" + "!" * 78 + "\n"
                  "!!  AUTHENTICATION IS DISABLED (--no-auth). Every request acts as tenant 'local'.\n"
                  "!!  For local use only: anyone who can reach this port can read and submit jobs.\n"
                  + "!" * 78 + "[/bold red]")
    chosen: bool | list[str] | None = list(task) if task else True if preload else None
    if chosen:  # one line per model loaded, shown without -v
        logging.getLogger("verticals.preload").setLevel(logging.INFO)
    try:
        from verticals.core.store import open_store

        app = create_app(open_store(), auth=not no_auth, threads=threads, preload=chosen)
    except Exception as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        err.print(f"[bold red]error:[/bold red] {message}")
        raise typer.Exit(2) from None
    broker = broker_url()
    threads = app.state.api.runner.threads
    executor = f"celery ({_sanitized(broker)})" if broker else f"local ({threads} thread(s) in this server)"
    err.print(f"verticals API on http://{host}:{port}  docs: /docs  dashboard: /dashboard  executor: {executor}")
    uvicorn.run(app, host=host, port=port, log_level=log_level)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant the key acts for (created if new).")],
    name: Annotated[str, typer.Option(help="What the key is for, e.g. etl.")],
    allow_code_execution: Annotated[bool, typer.Option(
        "--allow-code-execution",
        help="Let this key run tasks that execute submitted code (e.g. testgen.generate) on the server. "
             "Grant it only to tenants you trust with that (docs/security.md).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (id, tenant, name, key).")] = False,
) -> None:
    """Create an API key. It is printed once: store it now, it cannot be shown again."""
    from verticals.tenancy.tenants import TenantError

    try:
        key = _tenants().create_key(tenant, name, allow_code_execution=allow_code_execution)
    except TenantError as error:
        err.print(f"[bold red]error:[/bold red] {error}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps({"id": key.id, "tenant": key.tenant, "name": key.name, "key": key.token,
                          "allow_code_execution": key.allow_code_execution}))
        return
    print(key.token)
    grant = " May run code-executing tasks." if key.allow_code_execution else ""
    err.print(f"key {key.id} for tenant {key.tenant} ({key.name}).{grant} Shown once: store it now. "
              f"Use it as: Authorization: Bearer <key>")


@keys_app.command("list")
def keys_list(tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
              as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """API keys (ids and names; secrets are never stored)."""
    keys = _tenants().list_keys(tenant)
    rows = [{"id": k.id, "tenant": k.tenant_id, "name": k.name, "created_at": k.created_at.isoformat(),
             "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
             "revoked": k.revoked_at is not None, "allow_code_execution": bool(k.allow_code_execution)}
            for k in keys]
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        err.print("no API keys" + (f" for tenant {tenant}" if tenant else "")
                  + ": create one with `verticals keys create --tenant NAME --name WHAT_FOR`")
        return
    print_rows(out, ("id", "tenant", "name", "created", "last used", "state", "code execution"),
               [(row["id"], row["tenant"], row["name"], row["created_at"][:19], (row["last_used_at"] or "never")[:19],
                 "[red]revoked[/red]" if row["revoked"] else "active",
                 "[yellow]allowed[/yellow]" if row["allow_code_execution"] else "no") for row in rows])


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (from `keys list`) or the full key.")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    if not _tenants().revoke_key(key_id):
        err.print(f"[bold red]error:[/bold red] no active key {key_id[:16]!r} (see `verticals keys list`)")
        raise typer.Exit(1)
    err.print(f"revoked {key_id[:16]}")


@webhooks_app.command("add")
def webhooks_add(
    tenant: Annotated[str, typer.Option(help="Tenant whose job events are sent.")],
    url: Annotated[str, typer.Option(help="http(s) URL receiving the POSTs.")],
    event: Annotated[list[str] | None, typer.Option("--event", help="job.finished and/or job.failed (default both).")
                     ] = None,
) -> None:
    """Register a webhook; prints its id and signing secret (shown once)."""
    from verticals.tenancy.tenants import TenantError

    try:
        hook = _tenants().create_webhook(tenant, url, event or None)
    except TenantError as error:
        err.print(f"[bold red]error:[/bold red] {error}")
        raise typer.Exit(2) from None
    print(json.dumps({"id": hook.id, "url": hook.url, "events": hook.events, "secret": hook.secret}))


@webhooks_app.command("list")
def webhooks_list(tenant: Annotated[str | None, typer.Option(help="Only this tenant's webhooks.")] = None,
                  as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Active webhooks (their signing secrets are never shown again)."""
    hooks = [{"id": hook.id, "tenant": hook.tenant_id, "url": hook.url, "events": list(hook.events)}
             for hook in _tenants().list_webhooks(tenant)]
    if as_json:
        print(json.dumps(hooks))
        return
    if not hooks:
        err.print("no webhooks" + (f" for tenant {tenant}" if tenant else "")
                  + ": add one with `verticals webhooks add --tenant NAME --url URL`")
        return
    print_rows(out, ("id", "tenant", "url", "events"),
               [(hook["id"], hook["tenant"], hook["url"], ", ".join(hook["events"])) for hook in hooks])


@webhooks_app.command("remove")
def webhooks_remove(webhook_id: Annotated[str, typer.Argument(help="Webhook id.")]) -> None:
    """Stop sending events to a webhook (its delivery log stays)."""
    if not _tenants().delete_webhook(webhook_id, None):
        err.print(f"[bold red]error:[/bold red] no active webhook {webhook_id!r}")
        raise typer.Exit(1)
    err.print(f"removed {webhook_id}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
    app.add_typer(webhooks_app, name="webhooks")


def _sanitized(url: str) -> str:
    """The broker URL without its password, for the start-up line."""
    try:
        from kombu.utils.url import maybe_sanitize_url
    except ImportError:
        return url.split("@")[-1]
    return str(maybe_sanitize_url(url))
