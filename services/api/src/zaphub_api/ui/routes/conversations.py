"""A session's Conversations: its chats (`GET /sessions/{id}/chats`), one chat's thread
(`GET /sessions/{id}/chats/{chat}/messages`), and the composer (text, media by upload, location)."""

from typing import Any
from urllib.parse import quote
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from zaphub_api.ui.api import ApiRefused
from zaphub_api.ui.auth import Signed
from zaphub_api.ui.render import form_error, go, page

CHATS = 100  # the most recent chats listed
THREAD = 200  # a thread's most recent messages shown (the API's largest page)
UPLOAD_LIMIT = 64 * 1024 * 1024  # as the API's upload route; the API applies the real media cap
MEDIA_TYPES = ("image", "video", "audio", "document")


def preview(message: dict[str, Any]) -> str:
    content = message.get("content") or {}
    kind = message.get("type", "")
    if kind == "text":
        return str(content.get("text", ""))
    if kind == "location":
        return f"📍 {content.get('name') or ''} {content.get('latitude')}, {content.get('longitude')}".strip()
    caption = content.get("caption") or content.get("filename") or ""
    return f"[{kind}] {caption}".strip()


async def _chats(signed: Signed, session_id: UUID) -> list[dict[str, Any]]:
    listed: dict[str, Any] = await signed.api.get(f"/api/v1/sessions/{session_id}/chats", limit=CHATS)
    return list(listed["items"])


async def _thread(signed: Signed, session_id: UUID, chat: str | None) -> list[dict[str, Any]]:
    """The chat's last messages, oldest first (as a thread reads)."""
    if not chat:
        return []
    listed: dict[str, Any] = await signed.api.get(
        f"/api/v1/sessions/{session_id}/chats/{quote(chat, safe='')}/messages", limit=THREAD
    )
    return list(reversed(listed["items"]))


def _to(form: dict[str, Any]) -> str:
    return str(form.get("to") or "").strip()


class ConversationPages(Controller):
    path = "/sessions/{session_id:uuid}/chats"

    @get("/")
    async def conversations(
        self, signed: NamedDependency[Signed], session_id: FromPath[UUID], chat: FromQuery[str | None] = None
    ) -> Template:
        session = await signed.api.get(f"/api/v1/sessions/{session_id}")
        chats = await _chats(signed, session_id)
        if chat is None and chats:
            chat = chats[0]["chat"]
        thread = await _thread(signed, session_id, chat)
        return page(
            "conversations.html",
            signed,
            session=session,
            chats=chats,
            chat=chat,
            thread=thread,
            preview=preview,
            nav="sessions",
        )

    @get("/list")
    async def chat_list(
        self, signed: NamedDependency[Signed], session_id: FromPath[UUID], chat: FromQuery[str | None] = None
    ) -> Template:
        session = {"id": session_id}
        return page(
            "partials/chat_list.html",
            signed,
            session=session,
            chats=await _chats(signed, session_id),
            chat=chat,
            preview=preview,
        )

    @get("/thread")
    async def thread(
        self, signed: NamedDependency[Signed], session_id: FromPath[UUID], chat: FromQuery[str | None] = None
    ) -> Template:
        thread = await _thread(signed, session_id, chat)
        return page("partials/thread.html", signed, session_id=session_id, thread=thread, preview=preview)

    @post("/text")
    async def send_text(
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed], session_id: FromPath[UUID]
    ) -> Response[Any]:
        form = dict(await request.form())
        body = {"to": _to(form), "type": "text", "text": str(form.get("text") or "")}
        return await _send(request, signed, session_id, body, "text-error")

    @post("/location")
    async def send_location(
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed], session_id: FromPath[UUID]
    ) -> Response[Any]:
        form = dict(await request.form())
        try:
            latitude = float(str(form.get("latitude") or ""))
            longitude = float(str(form.get("longitude") or ""))
        except ValueError:
            return form_error(
                "location-error", "Latitude and longitude must be numbers, e.g. -23.55 and -46.63"
            )
        body: dict[str, Any] = {
            "to": _to(form),
            "type": "location",
            "latitude": latitude,
            "longitude": longitude,
        }
        if name := str(form.get("name") or "").strip():
            body["name"] = name
        return await _send(request, signed, session_id, body, "location-error")

    # Named `upload` so that the auth middleware gives it the upload cap (BodyLimits.upload_suffix).
    @post("/upload", request_max_body_size=UPLOAD_LIMIT)
    async def send_media(
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed], session_id: FromPath[UUID]
    ) -> Response[Any]:
        form = await request.form()
        upload = form.get("file")
        kind = str(form.get("type") or "image")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return form_error("media-error", "Choose a file to send.")
        if kind not in MEDIA_TYPES:
            return form_error("media-error", f"Type must be one of {', '.join(MEDIA_TYPES)}.")
        fields = {"to": _to(dict(form)), "type": kind}
        if caption := str(form.get("caption") or "").strip():
            fields["caption"] = caption
        raw = await upload.read()
        files = {"file": (upload.filename, raw, upload.content_type or "application/octet-stream")}
        try:
            response = await signed.api.request(
                "POST", f"/api/v1/sessions/{session_id}/messages/upload", files=files, data=fields
            )
        except ApiRefused as exc:
            return form_error("media-error", exc.message)
        return await _accepted(
            request, signed, session_id, response.json()["id"], str(form.get("chat") or "")
        )


async def _send(
    request: Request[Any, Any, Any],
    signed: Signed,
    session_id: UUID,
    body: dict[str, Any],
    error_target: str,
) -> Response[Any]:
    chat = str((await request.form()).get("chat") or "")
    try:
        accepted = await signed.api.post(f"/api/v1/sessions/{session_id}/messages", body)
    except ApiRefused as exc:
        return form_error(error_target, exc.message)
    return await _accepted(request, signed, session_id, accepted["id"], chat)


async def _accepted(
    request: Request[Any, Any, Any], signed: Signed, session_id: UUID, message_id: str, chat: str
) -> Response[Any]:
    """The sent message as the API now shows it, appended to the open thread (its status then moves on
    by SSE); sent to another chat, the page moves to that chat."""
    message = await signed.api.get(f"/api/v1/messages/{message_id}")
    if message["chat"] != chat:
        return go(request, f"/ui/sessions/{session_id}/chats?chat={quote(message['chat'])}")
    response = page("partials/message.html", signed, m=message, preview=preview)
    response.headers["HX-Trigger"] = "chat-sent"  # the chat list shows it as the last message
    return response
