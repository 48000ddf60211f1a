"""What the media-URL attack tests share: sending a media message by URL, and checking that a URL is
refused on `url` and that nothing was queued."""

import httpx
from e2e.client import Tenant

CONTACT = "+5511988887777"  # a simulated contact of the outside world


async def send_media(tenant: Tenant, session_id: str, url: str, kind: str = "document") -> httpx.Response:
    return await tenant.http.post(
        f"/api/v1/sessions/{session_id}/messages",
        json={"to": CONTACT, "type": kind, "url": url},
        headers=tenant.headers,
    )


async def refused_media(tenant: Tenant, urls: list[str]) -> None:
    """Each URL, as a document and as an image, answers 422 naming `url`; no message is queued."""
    session = await tenant.create_session("media")
    for url in urls:
        for kind in ("document", "image"):
            response = await send_media(tenant, session["id"], url, kind)
            assert response.status_code == 422, (url, kind, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert [e["field"] for e in response.json()["errors"]] == ["url"], (url, response.text)
    listed = await tenant.http.get(f"/api/v1/sessions/{session['id']}/messages", headers=tenant.headers)
    assert listed.status_code == 200 and listed.json() == [], listed.text
