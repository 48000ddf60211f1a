"""The Usage page: the tenant's rate-limit windows as meters, its messages waiting to be sent, and its
session quota."""

import asyncio
from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.response import Template

from zaphub_api.ui.api import ApiRefused
from zaphub_api.ui.auth import Signed
from zaphub_api.ui.render import page

WAITING = ("queued", "rate_limited")
COUNT_LIMIT = 500  # per session and status: the page says "500+" past it


class UsagePage(Controller):
    path = "/usage"

    @get("/")
    async def usage(self, signed: NamedDependency[Signed]) -> Template:
        stats = await signed.api.get("/api/v1/sessions/stats")
        sessions: list[dict[str, Any]] = await signed.api.get("/api/v1/sessions", limit=500)
        try:
            usage = await signed.api.get("/api/v1/usage")
            usage_error = None
        except ApiRefused as exc:
            usage, usage_error = {"windows": []}, exc.message

        async def waiting(session_id: str, status: str) -> int:
            found = await signed.api.get(
                f"/api/v1/sessions/{session_id}/messages",
                status=status,
                direction="outbound",
                limit=COUNT_LIMIT,
            )
            return len(found)

        counts = await asyncio.gather(*(waiting(s["id"], st) for s in sessions for st in WAITING))
        queued = sum(counts)
        return page(
            "usage.html",
            signed,
            stats=stats,
            windows=usage["windows"],
            usage_error=usage_error,
            queued=queued,
            capped=any(c >= COUNT_LIMIT for c in counts),
            nav="usage",
        )
