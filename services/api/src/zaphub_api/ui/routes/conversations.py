"""A session's Conversations: its messages grouped by chat, one chat's thread, and the composer (text,
media by upload, location). Until the API has chats routes, the chats are the `chat` of the session's
last messages (`GET /sessions/{id}/messages`)."""

from typing import Any
from urllib.parse import quote
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.response import Template

from zaphub_api.ui.api import ApiRefused
from zaphub_api.ui.auth import Signed
from zaphub_api.ui.render import form_error, go, page

RECENT = 500  # messages read to build the chat list
UPLOAD_LIMIT = 64 * 1024 * 1024  # as the API's upload route; the API applies the real media cap
MEDIA_TYPES = ("image", "video", "audio", "document")


def chats_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per chat, the most recent first, with its last message and its count."""
    chats: dict[str, dict[str, Any]] = {}
    for message in messages:  # newest first, as the API lists them
        chat = chats.setdefault(message["chat"], {"chat": message["chat"], "last": message, "count": 0})
        chat["count"] += 1
    return list(chats.values())


def preview(message: dict[str, Any]) -> str:
    content = message.get("content") or {}
    kind = message.get("type", "")
    if kind == "text":
        return str(content.get("text", ""))
    if kind == "location":
        return f"📍 {content.get('name') or ''} {content.get('latitude')}, {content.get('longitude')}".strip()
    caption = content.get("caption") or content.get("filename") or ""
    return f"[{kind}] {caption}".strip()


async def _thread(signed: Signed, session_id: UUID, chat: str | None) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = await signed.api.get(
        f"/api/v1/sessions/{session_id}/messages", limit=RECENT
    )
    return [m for m in reversed(messages) if m["chat"] == chat] if chat else []


def _to(form: dict[str, Any]) -> str:
    return str(form.get("to") or "").strip()


class ConversationPages(Controller):
    path = "/sessions/{session_id:uuid}/chats"

    @get("/")
    async def conversations(
        self, signed: NamedDependency[Signed], session_id: UUID, chat: str | None = None
    ) -> Template:
        session = await signed.api.get(f"/api/v1/sessions/{session_id}")
        messages = await signed.api.get(f"/api/v1/sessions/{session_id}/messages", limit=RECENT)
        chats = chats_of(messages)
        if chat is None and chats:
            chat = chats[0]["chat"]
        thread = [m for m in reversed(messages) if m["chat"] == chat] if chat else []
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
        self, signed: NamedDependency[Signed], session_id: UUID, chat: str | None = None
    ) -> Template:
        messages = await signed.api.get(f"/api/v1/sessions/{session_id}/messages", limit=RECENT)
        session = {"id": session_id}
        return page(
            "partials/chat_list.html",
            signed,
            session=session,
            chats=chats_of(messages),
            chat=chat,
            preview=preview,
        )

    @get("/thread")
    async def thread(
        self, signed: NamedDependency[Signed], session_id: UUID, chat: str | None = None
    ) -> Template:
        thread = await _thread(signed, session_id, chat)
        return page("partials/thread.html", signed, session_id=session_id, thread=thread, preview=preview)

    @post("/text")
    async def send_text(
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed], session_id: UUID
    ) -> Response[Any]:
        form = dict(await request.form())
        body = {"to": _to(form), "type": "text", "text": str(form.get("text") or "")}
        return await _send(request, signed, session_id, body, "text-error")

    @post("/location")
    async def send_location(
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed], session_id: UUID
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
        self, request: Request[Any, Any, Any], signed: NamedDependency[Signed], session_id: UUID
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
    request: Request[Any, Any, Any], signed: Signed, session_id: UUID, body: dict[str, Any], error_target: str
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
