"""Attack: DNS rebinding, a media URL whose name resolved to a public address when the send was
accepted and to an internal one when the session-host downloads it. Defence: the host checks the URL
again at fetch time and connects only to the address that check saw; the message fails with the
reason `media_url_refused`, and the internal server is never reached.

As in test_webhook_ssrf_by_dns_change.py, the change is made where the decision is: the API runs with
`ZAPHUB_EGRESS_ALLOW=127.0.0.1` (the address passes at accept time, as a public one would) and the
session-host without it (the same URL is refused at fetch time, as after a rebinding)."""

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from e2e.client import new_tenant
from security.media_attacks import send_media
from security.webhook_attacks import Listener, stack

from zaphub_devstack.testing import Stack


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


SERVICES = {
    "api": [_script("zaphub-api")],
    "dispatcher-1": [_script("zaphub-dispatcher")],
    "ratelimiter-1": [_script("zaphub-ratelimiter")],
    # The session-host sees the policy an address has after the change: not allowed.
    "session-host-1": ["env", "-u", "ZAPHUB_EGRESS_ALLOW", _script("zaphub-session-host")],
}


@pytest.fixture(scope="module")
async def changed_under_the_host(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with stack(
        tmp_path_factory.mktemp("media-dns"), SERVICES, ZAPHUB_EGRESS_ALLOW="127.0.0.1"
    ) as started:
        yield started


async def test_media_ssrf_by_dns_change_is_refused_at_fetch_time(changed_under_the_host: Stack) -> None:
    """Accepted with 202, each media message fails with `media_url_refused` and a generic detail;
    the internal server sees no connection."""
    async with (
        httpx.AsyncClient(base_url=changed_under_the_host.api_url, timeout=30) as http,
        Listener() as internal,
    ):
        tenant = await new_tenant(http, changed_under_the_host.admin_key)
        session = await tenant.connected_session()
        sent = []
        for kind in ("document", "image"):
            accepted = await send_media(tenant, session["id"], f"{internal.url}/secret.{kind}", kind)
            assert accepted.status_code == 202, accepted.text
            sent.append(accepted.json()["id"])
        for message_id in sent:
            failed = await tenant.wait_status(message_id, {"failed", "sent", "delivered", "read"}, timeout=60)
            assert failed["status"] == "failed", failed
            assert failed["failure_reason"] == "media_url_refused", failed
            assert str(internal.port) not in (failed["failure_detail"] or "")
        assert internal.connections == 0
