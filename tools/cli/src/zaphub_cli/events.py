"""`zaphub events tail`: the tenant's live events (SSE), one readable line each."""

import asyncio
from contextlib import aclosing
from typing import Annotated, Any
from uuid import UUID

import typer

from zaphub_cli import output
from zaphub_cli.client import Api, connect
from zaphub_cli.messages import summary as content_summary
from zaphub_cli.output import JsonFlag

app = typer.Typer(no_args_is_help=True, help="Live events of the tenant (Server-Sent Events).")


@app.command()
def tail(
    types: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only this event type, e.g. message.sent; repeat it for more."),
    ] = None,
    session_id: Annotated[UUID | None, typer.Option("--session", help="Only this session's events.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    timeout: Annotated[float | None, typer.Option(min=0.1, help="Stop after this many seconds.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Follow the live events: time, type, session and what happened, until Ctrl-C.

    With --json, each event is printed as its CloudEvent JSON on one line.
    """
    wanted = ",".join(t.strip() for name in types or [] for t in name.split(",") if t.strip()) or None
    with connect() as api:
        asyncio.run(follow(api, wanted, str(session_id) if session_id else None, limit, timeout, as_json))


async def follow(
    api: Api,
    types: str | None,
    session_id: str | None,
    limit: int | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Print events as they come; returns after `limit` events or `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            await _print_events(api, types, session_id, limit, as_json)
    except TimeoutError:
        return


async def _print_events(
    api: Api, types: str | None, session_id: str | None, limit: int | None, as_json: bool
) -> None:
    def opened() -> None:
        if not as_json:
            output.note(f"Listening for events at {api.url} (Ctrl-C to stop)")

    count = 0
    async with aclosing(api.events(types, opened)) as events:
        async for event in events:
            if session_id is not None and event.get("sessionid") != session_id:
                continue
            if as_json:
                output.print_json(event, compact=True)
            else:
                output.line(event_line(event))
            count += 1
            if limit is not None and count >= limit:
                return


def event_line(event: dict[str, Any]) -> str:
    """`12:01:02  message.sent  5f3c1a2b  to +5511988887777`."""
    kind = str(event.get("type", "")).removeprefix("io.zaphub.").removesuffix(".v1")
    session = str(event.get("sessionid", ""))[:8]
    what = describe(kind, event.get("data") or {})
    return f"{output.clock(event.get('time'))}  {kind:<20}  {session:<8}  {what}"


def describe(kind: str, data: dict[str, Any]) -> str:
    """What the event says, in a few words."""
    message = str(data.get("message_id") or "")
    match kind:
        case "session.qr":
            return f"new QR code (expires {output.clock(data.get('expires_at'))})"
        case "session.pair_code":
            return f"pairing code {data.get('code')} for +{data.get('phone')}"
        case "session.connected":
            return f"connected as {output.phone(data.get('jid'))}"
        case "session.disconnected":
            again = ", reconnecting" if data.get("will_reconnect") else ""
            return f"disconnected: {data.get('reason')}{again}"
        case "session.logged_out":
            return f"logged out: {data.get('reason')}"
        case "session.failed":
            return f"failed: {data.get('reason')} {data.get('detail') or ''}".strip()
        case "message.sent":
            return f"{message} sent to {output.phone(data.get('to'))}"
        case "message.delivered" | "message.read":
            receipt = kind.split(".")[1]
            return f"{message or data.get('whatsapp_id')} {receipt} in {output.phone(data.get('chat'))}"
        case "message.failed":
            return f"{message} failed: {data.get('reason')} {data.get('detail') or ''}".strip()
        case "message.rate_limited":
            return f"{message} rate-limited, retry in {data.get('retry_after')} s"
        case "message.received":
            sender = output.phone(data.get("sender"))
            return f"from {sender}: {content_summary(data.get('content') or {})}"
    return ", ".join(f"{k}={v}" for k, v in data.items())
