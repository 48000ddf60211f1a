"""Every message type the session-host sends; media by URL, inline or upload, and the media checks."""

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from zaphub_api.app import create_app
from zaphub_api.settings import ApiSettings

ADMIN_KEY = "zh_admin_test_0123456789abcdef0123456789"
ADMIN = {"X-API-Key": ADMIN_KEY}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def small_media_api(nats_url: str, database_url: str) -> AsyncIterator[Any]:
    settings = ApiSettings(
        nats_url=nats_url, database_url=database_url, admin_key=ADMIN_KEY, media_max_bytes=1000
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        tenant = (await client.post("/api/v1/tenants", json={"name": "m"}, headers=ADMIN)).json()
        auth = {"X-API-Key": tenant["api_key"]}
        session = (await client.post("/api/v1/sessions", json={"name": "s"}, headers=auth)).json()
        yield client, auth, f"/api/v1/sessions/{session['id']}/messages"


async def test_every_message_type_is_accepted(small_media_api: Any) -> None:
    """Text, media by URL or inline, location, contact and reaction are all accepted and stored."""
    client, auth, path = small_media_api
    to = {"to": "+5511999998888"}
    bodies = [
        {"type": "text", "text": "hi"},
        {"type": "image", "url": "https://example.com/a.jpg", "caption": "c", "mimetype": "image/jpeg"},
        {"type": "video", "url": "https://example.com/a.mp4"},
        {
            "type": "audio",
            "data_base64": base64.b64encode(b"ogg").decode(),
            "mimetype": "audio/ogg",
            "voice": True,
        },
        {"type": "document", "url": "https://example.com/a.pdf", "filename": "a.pdf"},
        {"type": "sticker", "url": "https://example.com/a.webp"},
        {"type": "location", "latitude": -23.5, "longitude": -46.6, "name": "SP"},
        {"type": "contact", "display_name": "Ana", "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:Ana\nEND:VCARD"},
        {"type": "reaction", "message_id": "3EB0ABC", "emoji": "👍"},
    ]
    for body in bodies:
        response = await client.post(path, json=to | body, headers=auth)
        assert response.status_code == 202, (body["type"], response.text)
    stored = (await client.get(path, headers=auth)).json()
    assert sorted(m["type"] for m in stored) == sorted(b["type"] for b in bodies)


async def test_media_checks_name_the_field(small_media_api: Any) -> None:
    """A disallowed MIME type is 415, an oversized file 413, a bad source 422; each names the field."""
    client, auth, path = small_media_api
    to = {"to": "+5511999998888"}
    cases = [
        ({"type": "image", "url": "https://example.com/a", "mimetype": "application/pdf"}, 415, "mimetype"),
        # A GIF as video fails on WhatsApp (it wants an mp4 with gif playback): refused at accept.
        ({"type": "video", "url": "https://example.com/a.gif", "mimetype": "image/gif"}, 415, "mimetype"),
        ({"type": "image", "data_base64": base64.b64encode(b"x" * 2000).decode()}, 413, "data_base64"),
        ({"type": "image", "data_base64": "not base64!"}, 422, "data_base64"),
        ({"type": "image"}, 422, None),
        ({"type": "image", "url": "ftp://example.com/a"}, 422, "url"),
    ]
    for body, status, field in cases:
        response = await client.post(path, json=to | body, headers=auth)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        if field:
            assert field in [e["field"] for e in response.json()["errors"]], response.text
    assert (await client.get(path, headers=auth)).json() == []


async def test_multipart_upload_is_sent_inline(small_media_api: Any) -> None:
    """An uploaded file becomes the message's inline media; a wrong type or size is refused naming `file`."""
    client, auth, path = small_media_api
    upload = f"{path}/upload"
    form = {"to": "+5511999998888", "type": "image", "caption": "up"}
    ok = await client.post(upload, data=form, files={"file": ("a.png", PNG, "image/png")}, headers=auth)
    assert ok.status_code == 202, ok.text
    message = (await client.get(f"/api/v1/messages/{ok.json()['id']}", headers=auth)).json()
    assert message["content"]["mimetype"] == "image/png"
    assert base64.b64decode(message["content"]["data_base64"]) == PNG
    assert message["content"]["caption"] == "up"
    wrong = await client.post(
        upload, data=form, files={"file": ("a.pdf", b"%PDF", "application/pdf")}, headers=auth
    )
    assert wrong.status_code == 415
    assert wrong.json()["errors"][0]["field"] == "file"
    big = await client.post(upload, data=form, files={"file": ("a.png", PNG * 20, "image/png")}, headers=auth)
    assert big.status_code == 413
    assert big.json()["errors"][0]["field"] == "file"


async def test_media_too_large_for_the_bus_is_refused_and_not_stored(api: Any) -> None:
    """Inline media that no send command could carry is a 413 naming the field, and nothing is stored."""
    _, auth = await api.tenant()
    session = await api.session(auth)
    path = f"/api/v1/sessions/{session['id']}/messages"
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 1_200_000).decode()
    body = {"to": "+5511999998888", "type": "image", "mimetype": "image/png", "data_base64": big}
    response = await api.client.post(path, json=body, headers=auth)
    assert response.status_code == 413, response.text
    assert "url" in response.json()["detail"]
    assert (await api.client.get(path, headers=auth)).json() == []


async def test_a_media_url_to_an_internal_address_is_refused_naming_url(small_media_api: Any) -> None:
    """Metadata, loopback (by address, name and another spelling) and private media URLs are 422 on
    `url` and nothing is stored; ZAPHUB_EGRESS_ALLOW is empty by default."""
    client, auth, path = small_media_api
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8222/varz",
        "http://localhost:4222/",
        "http://2130706433/",
        "http://[::1]/",
        "http://10.0.0.1/a.pdf",
    ):
        response = await client.post(
            path, json={"to": "+5511999998888", "type": "document", "url": url}, headers=auth
        )
        assert response.status_code == 422, (url, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["url"], url
    assert (await client.get(path, headers=auth)).json() == []
