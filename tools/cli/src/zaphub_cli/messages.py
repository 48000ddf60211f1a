"""`zaphub send` and `zaphub messages`: sending a message, and messages with their status history."""

import base64
import mimetypes
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

import typer

from zaphub_cli import output
from zaphub_cli.client import Api, CliError, connect
from zaphub_cli.output import JsonFlag
from zaphub_cli.waiting import TimeoutOption, poll

app = typer.Typer(no_args_is_help=True, help="Messages sent and received, with their status history.")

# Status only moves forward along this order (a failed message stays failed).
RANK = {"queued": 0, "rate_limited": 1, "sent": 3, "delivered": 4, "read": 5, "received": 6}
COLUMNS = ("id", "session", "direction", "status", "chat", "type", "created")


class Until(StrEnum):
    sent = "sent"
    delivered = "delivered"
    read = "read"


def media(kind: str, source: str, option: str) -> dict[str, Any]:
    """A file's bytes as `data_base64` with its MIME type guessed from its name; a URL as `url`."""
    if urlsplit(source).scheme in ("http", "https"):
        name = PurePosixPath(urlsplit(source).path).name
        fields: dict[str, Any] = {"url": source}
        guessed = mimetypes.guess_type(name)[0]
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {source}", param_hint=option)
        name = path.name
        guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
        fields = {"data_base64": base64.b64encode(path.read_bytes()).decode()}
    if guessed:
        fields["mimetype"] = guessed
    if kind == "document" and name:
        fields["filename"] = name
    return {"type": kind, **fields}


def location(value: str) -> dict[str, Any]:
    try:
        lat, lon = (float(part) for part in value.split(","))
    except ValueError:
        raise typer.BadParameter("give it as LAT,LON, e.g. -23.55,-46.63", param_hint="--location") from None
    return {"type": "location", "latitude": lat, "longitude": lon}


def content(
    text: str | None, image: str | None, document: str | None, where: str | None, caption: str | None
) -> dict[str, Any]:
    """The message body's type-specific fields, from exactly one of the content options."""
    options = {"--text": text, "--image": image, "--document": document, "--location": where}
    given = [name for name, value in options.items() if value is not None]
    if len(given) != 1:
        raise typer.BadParameter(
            "give exactly one of --text, --image, --document or --location",
            param_hint=", ".join(given) or None,
        )
    if caption is not None and (text is not None or where is not None):
        raise typer.BadParameter("goes with --image or --document only", param_hint="--caption")
    if text is not None:
        return {"type": "text", "text": text}
    if where is not None:
        return location(where)
    body = (
        media("image", image, "--image")
        if image is not None
        else media("document", document or "", "--document")
    )
    if caption is not None:
        body["caption"] = caption
    return body


def send(
    session_id: Annotated[UUID, typer.Argument(metavar="SESSION", help="The session's id.")],
    to: Annotated[str, typer.Argument(metavar="TO", help="E.164 number (+5511988887777) or a JID.")],
    text: Annotated[str | None, typer.Option(help="A text message.")] = None,
    image: Annotated[
        str | None, typer.Option(metavar="FILE|URL", help="An image, from a file or a URL.")
    ] = None,
    document: Annotated[
        str | None, typer.Option(metavar="FILE|URL", help="A document, from a file or a URL.")
    ] = None,
    where: Annotated[
        str | None, typer.Option("--location", metavar="LAT,LON", help="A location pin.")
    ] = None,
    caption: Annotated[str | None, typer.Option(help="Caption of an image or document.")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Repeat the send safely: a repeat returns the first message.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the message is sent (see --until).")
    ] = False,
    until: Annotated[Until, typer.Option(help="With --wait: the status to wait for.")] = Until.sent,
    timeout: TimeoutOption = 60.0,
    as_json: JsonFlag = False,
) -> None:
    """Send a message: text, an image, a document or a location. Prints the message's id."""
    body = {"to": to, **content(text, image, document, where, caption)}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    with connect() as api:
        response = api.call("POST", f"/sessions/{session_id}/messages", body=body, headers=headers)
        accepted: dict[str, Any] = response.json()
        if response.headers.get("Idempotent-Replayed") == "true" and not as_json:
            output.note("A repeat of an earlier send with this idempotency key: nothing new was sent")
        if wait:
            message = wait_status(api, accepted["id"], until, timeout)
    if as_json:
        output.print_json(message if wait else accepted)
        return
    output.line(accepted["id"])
    if wait:
        output.note(f"Message {message['status']}")


def wait_status(api: Api, message_id: str, until: Until, timeout: float) -> dict[str, Any]:
    def fetch() -> dict[str, Any]:
        message: dict[str, Any] = api.get(f"/messages/{message_id}")
        if message["status"] == "failed":
            reason = message.get("failure_reason") or "no reason given"
            detail = message.get("failure_detail")
            raise CliError(f"message {message_id} failed: {reason}" + (f" ({detail})" if detail else ""))
        return message

    return poll(
        fetch,
        lambda m: RANK.get(m["status"], 0) >= RANK[until],
        lambda m: str(m["status"]),
        timeout,
        f"the message to be {until}",
    )


def row(message: dict[str, Any]) -> tuple[object, ...]:
    return (
        message["id"],
        message["session_id"],
        message["direction"],
        message["status"],
        output.phone(message.get("chat")),
        message["type"],
        message["created_at"],
    )


@app.command("list")
def list_messages(
    session_id: Annotated[
        UUID | None, typer.Option("--session", help="Only this session's; every session's when left out.")
    ] = None,
    status: Annotated[str | None, typer.Option(help="Only messages in this status, e.g. failed.")] = None,
    direction: Annotated[str | None, typer.Option(help="outbound or inbound.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List messages, newest first."""
    query = {"status": status, "direction": direction, "limit": limit}
    with connect() as api:
        if session_id is not None:
            messages = api.get(f"/sessions/{session_id}/messages", **query)
        else:
            ids = [s["id"] for s in api.get("/sessions", limit=500)]
            found = [m for sid in ids for m in api.get(f"/sessions/{sid}/messages", **query)]
            messages = sorted(found, key=lambda m: m["created_at"], reverse=True)[:limit]
    output.emit(as_json, messages, lambda ms: output.table(COLUMNS, map(row, ms), "No messages."))


@app.command()
def show(
    message_id: Annotated[UUID, typer.Argument(metavar="ID", help="The message's id.")],
    as_json: JsonFlag = False,
) -> None:
    """A message with its status history."""
    with connect() as api:
        message = api.get(f"/messages/{message_id}")
    output.emit(as_json, message, render)


def render(message: dict[str, Any]) -> None:
    body = message.get("content") or {}
    output.details(
        [
            ("ID", message["id"]),
            ("Session", message["session_id"]),
            ("Direction", message["direction"]),
            ("Status", message["status"]),
            ("Chat", output.phone(message.get("chat"))),
            ("Sender", output.phone(message.get("sender"))),
            ("Type", message["type"]),
            ("Content", summary(body)),
            ("WhatsApp id", message.get("whatsapp_id")),
            ("Failure", message.get("failure_reason")),
            ("Failure detail", message.get("failure_detail")),
            ("Created", message["created_at"]),
        ]
    )
    output.line("")
    history = message.get("history") or []
    rows = (
        (h["status"], h["at"], ", ".join(f"{k}={v}" for k, v in (h.get("detail") or {}).items()))
        for h in history
    )
    output.table(("status", "at", "detail"), rows, "No status history.")


def summary(body: dict[str, Any]) -> str:
    """A message's content in a few words."""
    kind = body.get("type")
    if kind == "text":
        return str(body.get("text", ""))
    if kind == "location":
        return f"{body.get('latitude')},{body.get('longitude')} {body.get('name') or ''}".strip()
    if kind == "reaction":
        return f"{body.get('emoji')} to {body.get('message_id')}"
    if kind == "contact":
        return str(body.get("display_name", ""))
    parts = [str(kind), body.get("filename") or body.get("url") or body.get("mimetype"), body.get("caption")]
    return " ".join(str(p) for p in parts if p)
