"""The Sessions page (list, create, restart, logout, delete) and a session's Pairing page (its QR code,
pairing by phone number, then "Connected as ...")."""

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from zaphub_api.ui.api import ApiRefused
from zaphub_api.ui.auth import Signed
from zaphub_api.ui.render import form_error, go, page

NAME_HINT = "Use letters, digits, spaces and . @ + - only (at most 100)."
FRESH_QR_TRIES = 20  # x 0.1 s: the event that announced a QR may reach us before the API stored it


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _session(signed: Signed, session_id: UUID) -> dict[str, Any]:
    session: dict[str, Any] = await signed.api.get(f"/api/v1/sessions/{session_id}")
    return session


async def _qr(signed: Signed, session_id: UUID) -> dict[str, Any] | None:
    """The session's current QR code (JSON), or None while it shows none."""
    try:
        qr: dict[str, Any] = await signed.api.get(f"/api/v1/sessions/{session_id}/qr")
    except ApiRefused as exc:
        if exc.status == 404:
            return None
        raise
    return qr


def _not_before(after: str | None, expires_at: str | None) -> bool:
    if not after:
        return True
    try:
        return datetime.fromisoformat(expires_at or "") >= datetime.fromisoformat(after)
    except ValueError:
        return True


class SessionPages(Controller):
    path = "/sessions"

    @get("/")
    async def list_page(self, signed: NamedDependency[Signed]) -> Template:
        sessions = await signed.api.get("/api/v1/sessions", limit=500)
        return page("sessions.html", signed, sessions=sessions, nav="sessions")

    @get("/rows")
    async def rows(self, signed: NamedDependency[Signed]) -> Template:
        sessions = await signed.api.get("/api/v1/sessions", limit=500)
        return page("partials/session_rows.html", signed, sessions=sessions)

    @get("/new")
    async def new_form(self, signed: NamedDependency[Signed]) -> Template:
        return page("partials/new_session.html", signed)

    @post("/")
    async def create(self, request: Request[Any, Any, Any], signed: NamedDependency[Signed]) -> Response[Any]:
        name = (await _form(request)).get("name", "").strip()
        try:
            created = await signed.api.post("/api/v1/sessions", {"name": name})
        except ApiRefused as exc:
            message = exc.field_errors().get("name") or exc.message
            if "pattern" in message:
                message = NAME_HINT
            return form_error("new-session-error", message)
        return go(request, f"/ui/sessions/{created['id']}")

    @get("/{session_id:uuid}")
    async def pairing_page(self, signed: NamedDependency[Signed], session_id: FromPath[UUID]) -> Template:
        session = await _session(signed, session_id)
        qr = await _qr(signed, session_id) if session["status"] == "qr_pending" else None
        return page("pairing.html", signed, session=session, qr=qr, nav="sessions")

    @get("/{session_id:uuid}/pairing")
    async def pairing_panel(self, signed: NamedDependency[Signed], session_id: FromPath[UUID]) -> Template:
        session = await _session(signed, session_id)
        qr = await _qr(signed, session_id) if session["status"] == "qr_pending" else None
        return page("partials/pairing_panel.html", signed, session=session, qr=qr, known=("jid", "host"))

    @get("/{session_id:uuid}/qr.svg")
    async def qr_image(
        self, signed: NamedDependency[Signed], session_id: FromPath[UUID], after: FromQuery[str | None] = None
    ) -> Response[bytes]:
        """The QR code as SVG, from the API; `after` (an expiry time) waits briefly for that code."""
        for _ in range(FRESH_QR_TRIES):
            qr = await _qr(signed, session_id)
            if qr is not None and _not_before(after, qr.get("expires_at")):
                break
            await asyncio.sleep(0.1)
        image = await signed.api.request("GET", f"/api/v1/sessions/{session_id}/qr", accept="image/svg+xml")
        return Response(image.content, media_type="image/svg+xml")

    @post("/{session_id:uuid}/pair-code")
    async def pair_code(
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed], session_id: FromPath[UUID]
    ) -> Response[Any]:
        phone = (await _form(request)).get("phone", "").strip()
        try:
            code = await signed.api.post(f"/api/v1/sessions/{session_id}/pair-code", {"phone": phone})
        except ApiRefused as exc:
            return form_error("pair-code-error", exc.field_errors().get("phone") or exc.message)
        return page("partials/pair_code.html", signed, code=code["code"], phone=code["phone"])

    @post("/{session_id:uuid}/restart")
    async def restart(self, signed: NamedDependency[Signed], session_id: FromPath[UUID]) -> Template:
        await signed.api.post(f"/api/v1/sessions/{session_id}/restart")
        return page("partials/notice.html", signed, message="Restart requested.")

    @post("/{session_id:uuid}/logout")
    async def logout(self, signed: NamedDependency[Signed], session_id: FromPath[UUID]) -> Template:
        await signed.api.post(f"/api/v1/sessions/{session_id}/logout")
        return page("partials/notice.html", signed, message="Logout requested.")

    @post("/{session_id:uuid}/delete")
    async def delete(
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed], session_id: FromPath[UUID]
    ) -> Response[Any]:
        await signed.api.delete(f"/api/v1/sessions/{session_id}")
        return go(request, "/ui/sessions")
