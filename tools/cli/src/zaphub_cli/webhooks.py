"""`zaphub webhooks`: where the tenant's events are POSTed, their delivery log, and redelivery."""

from typing import Annotated, Any
from uuid import UUID

import typer

from zaphub_cli import output
from zaphub_cli.client import connect
from zaphub_cli.output import JsonFlag

app = typer.Typer(
    no_args_is_help=True, help="Webhooks: create, list, delete; their deliveries and redelivery."
)

WebhookId = Annotated[UUID, typer.Argument(metavar="ID", help="The webhook's id.")]
COLUMNS = ("id", "url", "events", "active", "created")


def row(hook: dict[str, Any]) -> tuple[object, ...]:
    return hook["id"], hook["url"], hook["events"], hook["active"], hook["created_at"]


@app.command("list")
def list_webhooks(as_json: JsonFlag = False) -> None:
    """List the tenant's webhooks, oldest first."""
    with connect() as api:
        hooks = api.get("/webhooks", limit=500)
    output.emit(as_json, hooks, lambda hs: output.table(COLUMNS, map(row, hs), "No webhooks."))


@app.command()
def create(
    url: Annotated[str, typer.Argument(metavar="URL", help="Where to POST the events (http or https).")],
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--events", help="An event type to deliver, e.g. message.received; repeat it. All: '*'."
        ),
    ] = None,
    secret: Annotated[
        str | None, typer.Option(help="Signing secret (16+ characters); generated if left out.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note for people.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a webhook; its signing secret is shown now, and never again."""
    names = [e.strip() for item in events or ["*"] for e in item.split(",") if e.strip()]
    body = {"url": url, "events": names, "secret": secret, "description": description}
    with connect() as api:
        hook = api.post("/webhooks", {k: v for k, v in body.items() if v is not None})
    output.emit(as_json, hook, render_created)


def render_created(hook: dict[str, Any]) -> None:
    output.details(
        [
            ("ID", hook["id"]),
            ("URL", hook["url"]),
            ("Events", hook["events"]),
            ("Active", hook["active"]),
            ("Description", hook.get("description")),
            ("Secret", hook["secret"]),
        ]
    )
    output.note("The secret signs each POST (ZapHub-Signature header); it is not shown again.")


@app.command()
def delete(webhook_id: WebhookId, as_json: JsonFlag = False) -> None:
    """Delete a webhook; its pending deliveries are dropped."""
    with connect() as api:
        api.delete(f"/webhooks/{webhook_id}")
    output.emit(
        as_json, {"id": webhook_id, "deleted": True}, lambda _: output.line(f"Deleted webhook {webhook_id}")
    )


@app.command()
def deliveries(
    webhook_id: WebhookId,
    status: Annotated[str | None, typer.Option(help="pending, retrying, succeeded or failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The webhook's deliveries, newest first: event, status, attempts and the last answer."""
    with connect() as api:
        found = api.get(f"/webhooks/{webhook_id}/deliveries", status=status, limit=limit)
    output.emit(as_json, found, render_deliveries)


def render_deliveries(found: list[dict[str, Any]]) -> None:
    columns = ("id", "event", "status", "attempts", "last code", "last error", "created")
    fields = ("id", "event_type", "status", "attempts", "last_response_code", "last_error", "created_at")
    rows = ([d.get(name) for name in fields] for d in found)
    output.table(columns, rows, "No deliveries.")


@app.command()
def redeliver(
    webhook_id: WebhookId,
    delivery_id: Annotated[UUID, typer.Argument(metavar="DELIVERY", help="The delivery's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Queue a delivery again, e.g. after it failed."""
    with connect() as api:
        accepted = api.post(f"/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
    output.emit(
        as_json,
        accepted,
        lambda a: output.line(f"Delivery {a['id']} queued again (attempt {a['next_attempt']})"),
    )
