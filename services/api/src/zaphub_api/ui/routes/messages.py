"""The Messages page: a log of the sessions' messages with filters, each with its status history."""

import asyncio
from typing import Any
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from zaphub_api.ui.api import ApiRefused
from zaphub_api.ui.auth import Signed
from zaphub_api.ui.render import page
from zaphub_api.ui.routes.conversations import preview

STATUSES = ("queued", "rate_limited", "sent", "delivered", "read", "failed", "received")
PAGE_SIZE = 100
ALL_SESSIONS = 50


class MessagePages(Controller):
    path = "/messages"

    @get("/")
    async def log(
        self,
        signed: NamedDependency[Signed],
        session: FromQuery[str | None] = None,
        direction: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
    ) -> Template:
        sessions: list[dict[str, Any]] = await signed.api.get("/api/v1/sessions", limit=500)
        filters = {
            "session": session or "",
            "direction": direction or "",
            "status": status or "",
            "since": since or "",
        }
        # The API lists messages per session: "all sessions" reads each (up to ALL_SESSIONS) and merges.
        chosen = [session] if session else [s["id"] for s in sessions[:ALL_SESSIONS]]
        query = {"limit": PAGE_SIZE, "direction": direction, "status": status, "since": since}
        messages: list[dict[str, Any]] = []
        error = None
        try:
            found = await asyncio.gather(
                *(signed.api.get(f"/api/v1/sessions/{sid}/messages", **query) for sid in chosen)
            )
        except ApiRefused as exc:
            if exc.status == 404:
                raise
            error = exc.message  # a bad filter, shown next to the filters
        else:
            merged = [m for batch in found for m in batch]
            messages = sorted(merged, key=lambda m: str(m["created_at"]), reverse=True)[:PAGE_SIZE]
        names = {s["id"]: s["name"] for s in sessions}
        return page(
            "messages.html",
            signed,
            sessions=sessions,
            names=names,
            messages=messages,
            filters=filters,
            statuses=STATUSES,
            error=error,
            preview=preview,
            nav="messages",
        )

    @get("/{message_id:uuid}")
    async def message(self, signed: NamedDependency[Signed], message_id: FromPath[UUID]) -> Template:
        message = await signed.api.get(f"/api/v1/messages/{message_id}")
        return page("message.html", signed, m=message, preview=preview, nav="messages")

    @get("/{message_id:uuid}/history")
    async def history(self, signed: NamedDependency[Signed], message_id: FromPath[UUID]) -> Template:
        """The status history of one message (the log lists messages without it)."""
        message = await signed.api.get(f"/api/v1/messages/{message_id}")
        return page("partials/history.html", signed, m=message)
