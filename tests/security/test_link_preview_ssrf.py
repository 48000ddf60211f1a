"""Attack: a tenant sends a text with `link_preview: true` whose first URL points inside (the gateway's
loopback, the cloud metadata service, a private network), so that the session-host fetches it and the
answer's title leaks into the message. Defence: the preview is fetched through the egress policy,
which refuses those addresses before connecting; the text still goes out, without a preview."""

from typing import Any

import httpx
from e2e.client import Tenant, eventually, new_tenant
from security.webhook_attacks import Listener

from zaphub_devstack.testing import Stack

INSIDE = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://10.0.0.7/internal/status",
    "http://192.168.1.1/",
    "http://[::1]:4222/",
    "http://2130706433/",  # 127.0.0.1 as one number
]


async def inbound(tenant: Tenant, session_id: str, least: int) -> list[dict[str, Any]]:
    async def arrived() -> list[dict[str, Any]] | None:
        response = await tenant.http.get(
            f"/api/v1/sessions/{session_id}/messages", params={"direction": "inbound"}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        items = response.json()
        return items if len(items) >= least else None

    return await eventually(arrived, 30, f"{least} messages at the recipient")


async def test_a_link_preview_of_an_inside_address_is_not_fetched_and_the_text_goes_without_one(
    defaults: Stack,
) -> None:
    """Each text with an inside URL is accepted, sent and received without a preview; a server on
    the gateway's loopback sees no connection."""
    async with httpx.AsyncClient(base_url=defaults.api_url, timeout=30) as http, Listener() as local:
        tenant = await new_tenant(http, defaults.admin_key)
        alice = await tenant.connected_session("alice")
        bob = await tenant.connected_session("bob")
        texts = [f"look: {url} now" for url in [local.url, *INSIDE]]
        sent = []
        for text in texts:
            response = await http.post(
                f"/api/v1/sessions/{alice['id']}/messages",
                json={"to": bob["jid"], "type": "text", "text": text, "link_preview": True},
                headers=tenant.headers,
            )
            assert response.status_code == 202, response.text
            sent.append(response.json()["id"])
        for message_id in sent:
            done = await tenant.wait_status(message_id, {"sent", "delivered", "read"}, timeout=30)
            assert done["status"] != "failed"

        arrived = await inbound(tenant, bob["id"], len(texts))
        contents = [(await tenant.message(m["id"]))["content"] for m in arrived]
        assert sorted(c["text"] for c in contents) == sorted(texts)
        assert all(c.get("preview") is None for c in contents), contents
        assert local.connections == 0
