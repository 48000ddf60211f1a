"""The dashboard's event stream: `/api/v1/events` of the signed-in key, relayed as htmx partials.

Each API event becomes one or more SSE events named for what they update (`status-<session>`,
`pairing-<session>`, `msg-<message>`, ...), whose data is the HTML that an element with that
`sse-swap` name takes. `resync` follows every (re)connection, so a page refetches what it may have
missed while no stream was open. Every few seconds the key is checked again: once the API rejects
it, the session ends and the stream says `signed-out` (data: why) and ends.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent, ServerSentEventMessage

from zaphub_api.auth import KeyRing
from zaphub_api.ui.api import KeyRejected
from zaphub_api.ui.auth import RECHECK_SECONDS, Dashboard, Signed, dashboard_of, key_works, keyring_of
from zaphub_api.ui.render import rank

Render = Callable[[str, dict[str, Any]], str]
RETRY_MS = 1000  # the browser reconnects this soon after the stream ends
# The data names the notice of the sign-in page the browser is sent to (routes/signin.py).
SIGNED_OUT_REVOKED = ServerSentEventMessage(event="signed-out", data="revoked")
MESSAGE_STATUS = {
    "message.sent": "sent",
    "message.delivered": "delivered",
    "message.read": "read",
    "message.failed": "failed",
    "message.rate_limited": "rate_limited",
}


def message_status(render: Render, status: str) -> str:
    return render("partials/message_status.html", {"status": status, "rank": rank(status)})


def _session_partials(render: Render, kind: str, sid: str, data: dict[str, Any]) -> list[tuple[str, str]]:
    session: dict[str, Any] = {"id": sid, "jid": None, "status_reason": None}
    qr = None
    known: tuple[str, ...] = ()  # the facts this event tells besides the status
    if kind == "session.qr":
        session["status"] = "qr_pending"
        qr = {"expires_at": data.get("expires_at")}
    elif kind == "session.connected":
        session.update(
            status="connected", jid=data.get("jid"), push_name=data.get("push_name"), host=data.get("host_id")
        )
        known = ("jid", "host")
    elif kind == "session.disconnected":
        session["status"] = "connecting" if data.get("will_reconnect", True) else "disconnected"
        session["status_reason"] = data.get("reason")
    elif kind == "session.logged_out":
        session.update(status="logged_out", status_reason=data.get("reason"))
        known = ("jid",)
    elif kind == "session.failed":
        session.update(status="failed", status_reason=f"{data.get('reason')}: {data.get('detail', '')}")
    else:
        return []
    # The pairing panel first: swapping it aborts a refetch of it still on its way, which would
    # otherwise land after the status below with older facts.
    panel = render("partials/pairing_panel.html", {"session": session, "qr": qr, "known": known})
    out = [
        (f"pairing-{sid}", panel),
        (f"status-{sid}", render("partials/session_status.html", {"status": session["status"]})),
    ]
    if "jid" in known:
        out.append((f"phone-{sid}", render("partials/phone.html", {"jid": session["jid"]})))
    if "host" in known:
        out.append((f"host-{sid}", str(session.get("host") or "")))
    if kind == "session.connected":
        out += [(f"pairform-{sid}", ""), (f"paircode-{sid}", "")]
    elif kind == "session.logged_out":
        out.append((f"pairform-{sid}", render("partials/pair_form.html", {"session": session})))
    return out


def partials(render: Render, kind: str, raw: str) -> list[tuple[str, str]]:
    """The SSE events (name, HTML) that one API event makes; none for what no page shows."""
    try:
        event = json.loads(raw)
        sid = str(event["sessionid"])
        data = event.get("data") or {}
    except (ValueError, KeyError, TypeError):
        return []
    if kind.startswith("session."):
        if kind == "session.pair_code":
            return [(f"paircode-{sid}", render("partials/pair_code.html", data))]
        return _session_partials(render, kind, sid, data)
    if kind in MESSAGE_STATUS and data.get("message_id"):
        out = [(f"msg-{data['message_id']}", message_status(render, MESSAGE_STATUS[kind]))]
        if kind == "message.sent":  # a sent message moves its chat to the top of the chat list
            out.append((f"sent-{sid}", ""))
        return out
    if kind == "message.received":
        return [(f"inbound-{sid}", "")]
    return []


async def _relay(
    dashboard: Dashboard, keyring: KeyRing, signed: Signed, render: Render
) -> AsyncIterator[ServerSentEventMessage]:
    queue: asyncio.Queue[tuple[str, str] | Exception | None] = asyncio.Queue(maxsize=1000)

    async def pump() -> None:
        try:
            async for item in signed.api.events():
                await queue.put(item)
            await queue.put(None)
        except Exception as exc:  # handed to the relay, which ends the stream
            await queue.put(exc)

    pumping = asyncio.create_task(pump())
    session = signed.session
    try:
        yield ServerSentEventMessage(data=None, comment="connected", retry=RETRY_MS)
        while True:
            try:
                item: tuple[str, str] | Exception | None = await asyncio.wait_for(
                    queue.get(), RECHECK_SECONDS
                )
            except TimeoutError:
                item = ("tick", "")
            # The API ends its own stream of a key it revoked: asked again, the key says why it ended.
            ended = item is None or isinstance(item, Exception)
            if isinstance(item, KeyRejected) or (ended and not await key_works(keyring, session.key)):
                dashboard.sessions.end_key(session.key)
                yield SIGNED_OUT_REVOKED
                return
            if item is None or isinstance(item, Exception):
                return  # the API's stream ended; the browser reconnects and resyncs
            if dashboard.sessions.get(session.id) is None:  # signed out elsewhere, or idled out
                yield ServerSentEventMessage(event="signed-out", data="ended")
                return
            if dashboard.sessions.due_for_check(session) and not await key_works(keyring, session.key):
                dashboard.sessions.end_key(session.key)
                yield SIGNED_OUT_REVOKED
                return
            kind, data = item
            if kind == "tick":
                yield ServerSentEventMessage(data=None, comment="heartbeat")
            elif kind == "open":
                yield ServerSentEventMessage(event="resync", data="resync")
            else:
                for name, html in partials(render, kind, data):
                    yield ServerSentEventMessage(event=name, data=html or " ")
    finally:
        # Not awaited: this request is being cancelled, and awaiting the pump would pass each repeat of
        # that cancellation on to it, cutting short its closing of the API's stream (which then stays
        # open on a socket no one reads). Kept referenced until it has closed.
        pumping.cancel()
        dashboard.closing.add(pumping)
        pumping.add_done_callback(dashboard.closing.discard)


class EventStream(Controller):
    @get("/events", media_type="text/event-stream")
    async def events(self, request: Request[Any, Any, Any], signed: NamedDependency[Signed]) -> Response[Any]:
        if signed.is_admin:
            return Response(content=b"", status_code=204)  # no tenant events; 204 stops EventSource
        engine = request.app.template_engine
        assert engine is not None

        def render(name: str, context: dict[str, Any]) -> str:
            return str(engine.get_template(name).render(**context)).strip()

        return ServerSentEvent(_relay(dashboard_of(request), keyring_of(request), signed, render))
