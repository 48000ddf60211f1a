"""`zaphub tenants`: tenants and their API keys, with the admin key."""

from typing import Annotated, Any
from uuid import UUID

import typer

from zaphub_cli import output
from zaphub_cli.client import connect
from zaphub_cli.output import JsonFlag

app = typer.Typer(no_args_is_help=True, help="Tenants and their API keys (needs the admin key).")
keys = typer.Typer(no_args_is_help=True, help="A tenant's API keys.")
app.add_typer(keys, name="keys")

TenantId = Annotated[UUID, typer.Argument(metavar="TENANT", help="The tenant's id.")]
COLUMNS = ("id", "name", "max sessions", "per minute", "per hour", "per day", "created")


def row(tenant: dict[str, Any]) -> tuple[object, ...]:
    limits = tenant.get("rate_limits") or {}
    return (
        tenant["id"],
        tenant["name"],
        tenant["max_sessions"],
        limits.get("per_minute"),
        limits.get("per_hour"),
        limits.get("per_day"),
        tenant["created_at"],
    )


@app.command("list")
def list_tenants(
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List the tenants."""
    with connect(admin=True) as api:
        tenants = api.get("/tenants", limit=limit)
    output.emit(as_json, tenants, lambda ts: output.table(COLUMNS, map(row, ts), "No tenants."))


@app.command()
def create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The tenant's name.")],
    max_sessions: Annotated[int | None, typer.Option(min=0, help="Sessions it may hold.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a tenant and its first API key (shown only now)."""
    body: dict[str, Any] = {"name": name}
    if max_sessions is not None:
        body["max_sessions"] = max_sessions
    with connect(admin=True) as api:
        tenant = api.post("/tenants", body)
    output.emit(as_json, tenant, render_created)


def render_created(tenant: dict[str, Any]) -> None:
    output.details([("ID", tenant["id"]), ("Name", tenant["name"]), ("API key", tenant["api_key"])])
    output.note("The API key is shown only now. Use it: zaphub login --key <API key>")


@keys.command("create")
def create_key(
    tenant_id: TenantId,
    name: Annotated[str, typer.Option(help="A name for the key, e.g. ci.")] = "default",
    as_json: JsonFlag = False,
) -> None:
    """Create another API key for a tenant (to rotate keys); shown only now."""
    with connect(admin=True) as api:
        key = api.post(f"/tenants/{tenant_id}/api-keys", {"name": name})
    output.emit(as_json, key, render_key)


def render_key(key: dict[str, Any]) -> None:
    output.details(
        [("ID", key["id"]), ("Name", key["name"]), ("Tenant", key["tenant_id"]), ("API key", key["api_key"])]
    )
    output.note("The API key is shown only now.")


@keys.command("list")
def list_keys(tenant_id: TenantId, as_json: JsonFlag = False) -> None:
    """A tenant's API keys, by prefix (the secrets are never stored)."""
    with connect(admin=True) as api:
        found = api.get(f"/tenants/{tenant_id}/api-keys")
    columns = ("id", "name", "prefix", "created", "revoked")
    output.emit(
        as_json,
        found,
        lambda ks: output.table(
            columns, ((k["id"], k["name"], k["prefix"], k["created_at"], k.get("revoked_at")) for k in ks)
        ),
    )
