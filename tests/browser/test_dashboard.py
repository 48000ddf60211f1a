"""The dashboard at /ui in a real Chromium against one whole stack on the simulator: signing in and out,
pairing by QR, the composer, webhooks, tenant isolation, the admin's capacity and a revoked key. The
attacks on its sessions that need no browser (CSRF, cookie flags, throttling) are in
tests/security/test_dashboard_sessions.py.

`ZAPHUB_UI_SCREENSHOTS=docs/images ./dev test tests/browser/test_dashboard.py -k screenshots` writes
the screenshots of docs/dashboard.md and the README.
"""

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from e2e.receiver import Receiver
from playwright.async_api import Browser, Page, expect

from zaphub_devstack.testing import Stack

T = TypeVar("T")
TO = "+5511988887777"
SCREENSHOTS_ENV = "ZAPHUB_UI_SCREENSHOTS"
VIEWPORT = {"width": 1280, "height": 800}
LIVE_MS = 20_000  # the simulator pairs after PAIR_DELAY s; receipts come within 2 s of a send


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    env = {
        "ZAPHUB_TRANSPORT": "sim",
        "ZAPHUB_SIM_PAIR_DELAY": "5",  # long enough to see the QR code first, on a busy machine too
        "ZAPHUB_EGRESS_ALLOW": "127.0.0.1",  # the webhook receiver of these tests
        "ZAPHUB_WEBHOOK_RETRY_BASE_DELAY": "0.2",
        "ZAPHUB_SSE_HEARTBEAT": "1",  # an event stream no one reads fills its socket within a second
    }
    async with Stack(tmp_path_factory.mktemp("dashboard-stack"), env=env) as stack:
        yield stack


@dataclass
class Tenant:
    id: str
    key: str
    http: httpx.AsyncClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def create_session(self, name: str) -> str:
        response = await self.http.post("/api/v1/sessions", json={"name": name}, headers=self.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def session(self, session_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/sessions/{session_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())


async def eventually(check: Callable[[], Awaitable[T | None]], within: float, what: str) -> T:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (found := await check()) is not None:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {within} s: {what}")


@pytest.fixture(scope="module")
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        yield client


async def new_tenant(http: httpx.AsyncClient, admin_key: str, name: str) -> Tenant:
    response = await http.post(
        "/api/v1/tenants", json={"name": name}, headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Tenant(id=body["id"], key=body["api_key"], http=http)


@pytest.fixture(scope="module")
async def acme(stack: Stack, http: httpx.AsyncClient) -> Tenant:
    return await new_tenant(http, stack.admin_key, "acme")


@pytest.fixture(scope="module")
async def acme_session(acme: Tenant) -> str:
    """A session of acme created through the API, paired by the time the tests that use it run."""
    return await acme.create_session("support")


async def connected(tenant: Tenant, session_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        session = await tenant.session(session_id)
        return session if session["status"] == "connected" else None

    return await eventually(check, 30, f"session {session_id} to be connected")


async def ready(page: Page) -> None:
    """Until htmx has processed the page: a click before that would do nothing (or submit natively)."""
    await expect(page.locator("html[data-htmx=ready]")).to_be_attached()


async def goto(page: Page, url: str) -> None:
    await page.goto(url)
    await ready(page)


async def sign_in(page: Page, stack: Stack, key: str) -> None:
    await goto(page, f"{stack.api_url}/ui/sign-in")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    await ready(page)


async def qr_drawn(page: Page) -> None:
    """Until the QR code's image has loaded: an SVG with a width, not a broken or pending image."""
    qr = page.get_by_role("img", name="QR code to scan with WhatsApp")
    await expect(qr).to_be_visible(timeout=LIVE_MS)
    await expect(qr).to_have_js_property("complete", True)
    assert await qr.evaluate("img => img.naturalWidth") > 0


async def test_a_bad_key_gets_a_clear_error(stack: Stack, page: Page, outside_requests: list[str]) -> None:
    """Signing in with an unknown key stays on the sign-in form and says why, next to the key."""
    await page.goto(f"{stack.api_url}/ui")
    await page.get_by_label("API key").fill("zh_00000000_not-a-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("This API key is unknown or revoked.")
    await expect(page.get_by_label("API key")).to_be_visible()
    await expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    assert outside_requests == []


async def test_pairing_shows_the_qr_then_connected_without_a_reload(
    stack: Stack, page: Page, acme: Tenant, outside_requests: list[str]
) -> None:
    """A new session shows its QR code; when the simulator pairs, the same page says "Connected as +55…"."""
    await sign_in(page, stack, acme.key)
    await page.get_by_role("button", name="New session").click()
    await page.get_by_label("Name").fill("sales-br")
    await page.get_by_role("button", name="Create").click()
    await expect(page.get_by_role("heading", name="sales-br")).to_be_visible()
    await qr_drawn(page)
    await expect(page.get_by_text(re.compile(r"Expires in \d+ s"))).to_be_visible()
    await expect(page.get_by_text("qr_pending", exact=True)).to_be_visible()
    await page.evaluate("window.sameDocument = true")
    await expect(page.get_by_text(re.compile(r"Connected as \+55\d+"))).to_be_visible(timeout=LIVE_MS)
    await expect(page.get_by_text("connected", exact=True)).to_be_visible()
    assert await page.evaluate("window.sameDocument") is True, "the page was reloaded"
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Sessions").click()
    await ready(page)
    row = page.get_by_role("row").filter(has_text="sales-br")
    await expect(row).to_contain_text("connected")
    await expect(row).to_contain_text(re.compile(r"\+55\d+"))
    assert outside_requests == []


async def test_a_text_from_the_composer_reaches_read(
    stack: Stack, page: Page, acme: Tenant, acme_session: str, outside_requests: list[str]
) -> None:
    """A text sent from a session's composer appears in the chat, its status moves on to "read", and the
    chat list shows the chat with it as the last message."""
    await connected(acme, acme_session)
    await sign_in(page, stack, acme.key)
    await goto(page, f"{stack.api_url}/ui/sessions/{acme_session}/chats")
    await page.get_by_label("To", exact=True).fill(TO)
    await page.get_by_label("Message", exact=True).fill("Olá from the dashboard")
    await page.get_by_role("button", name="Send", exact=True).click()
    bubble = (
        page.get_by_role("list", name="Chat history")
        .get_by_role("listitem")
        .filter(has_text="Olá from the dashboard")
    )
    await expect(bubble.locator(".msg-status")).to_have_text("read", timeout=LIVE_MS)
    chats = page.get_by_role("complementary", name="Chats")
    await expect(chats.get_by_role("link", name=re.compile(re.escape(TO)))).to_contain_text(
        "Olá from the dashboard", timeout=LIVE_MS
    )
    assert outside_requests == []


async def test_a_webhook_is_created_and_its_deliveries_listed(
    stack: Stack, page: Page, acme: Tenant, acme_session: str
) -> None:
    """A webhook made on the Webhooks page shows its secret once, then lists its succeeded deliveries."""
    await connected(acme, acme_session)
    async with Receiver() as receiver:
        await sign_in(page, stack, acme.key)
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
        await page.get_by_label("URL").fill(receiver.url)
        await page.get_by_role("button", name="Create webhook").click()
        secret = page.get_by_role("status").filter(has_text="shown only now")
        await expect(secret).to_contain_text(re.compile(r"whsec_\S+"))
        response = await acme.http.post(
            f"/api/v1/sessions/{acme_session}/messages",
            json={"to": TO, "type": "text", "text": "for the webhook"},
            headers=acme.headers,
        )
        assert response.status_code == 202, response.text
        await page.get_by_role("link", name="Deliveries").click()
        delivered = page.get_by_role("row").filter(has_text="message.sent")
        await expect(delivered.first).to_contain_text("succeeded", timeout=LIVE_MS)
        await expect(delivered.first.get_by_role("button", name=re.compile("^Redeliver"))).to_be_visible()
        assert any(r.headers.get("zaphub-event-type") == "message.sent" for r in receiver.requests)
        await page.reload()
        await expect(page.get_by_text(re.compile(r"whsec_"))).to_have_count(0)


async def test_another_tenants_session_shows_not_found(
    stack: Stack, page: Page, http: httpx.AsyncClient, acme_session: str
) -> None:
    """Signed in as another tenant, the URL of acme's session (and its chats) shows "not found"."""
    globex = await new_tenant(http, stack.admin_key, "globex")
    await sign_in(page, stack, globex.key)
    for path in (f"/ui/sessions/{acme_session}", f"/ui/sessions/{acme_session}/chats"):
        response = await page.goto(f"{stack.api_url}{path}")
        assert response is not None and response.status == 404
        await expect(page.get_by_role("heading", name="not found")).to_be_visible()
        await expect(page.get_by_text("support")).to_have_count(0)


async def test_admin_sees_installation_capacity(
    stack: Stack, page: Page, outside_requests: list[str]
) -> None:
    """The admin key opens the Admin page: a capacity meter with its level, the session-host and tenants."""
    await sign_in(page, stack, stack.admin_key)
    await expect(page.get_by_role("heading", name="Installation capacity")).to_be_visible()
    await expect(page.get_by_role("meter", name="Installation capacity")).to_be_visible()
    capacity = page.get_by_role("region", name="Installation capacity")
    await expect(capacity).to_contain_text(
        re.compile(r"\d+ of \d+ sessions connected on 1 host · [\d.]+ % · ok")
    )
    await expect(page.get_by_role("cell", name="session-host-1")).to_be_visible()
    await expect(page.get_by_role("link", name="acme", exact=True)).to_be_visible()
    await expect(page.get_by_role("link", name="Sessions")).to_have_count(0)  # tenant pages are not offered
    assert outside_requests == []


async def test_signing_out_ends_the_session(stack: Stack, browser: Browser, page: Page, acme: Tenant) -> None:
    """After "Sign out" the old session cookie opens nothing: the browser is sent to sign in."""
    await sign_in(page, stack, acme.key)
    cookies = await page.context.cookies()
    session_cookie = next(c for c in cookies if c["name"] == "zaphub_ui")
    assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Strict"
    await page.get_by_role("button", name="Sign out").click()
    # "Your session ended" when a request of the old page, answered after the sign-out, got there first.
    await expect(page.get_by_role("status")).to_have_text(re.compile("You are signed out|Your session ended"))
    replay = await browser.new_context()
    try:
        await replay.add_cookies([session_cookie])
        other = await replay.new_page()
        await other.goto(f"{stack.api_url}/ui/sessions")
        assert other.url.startswith(f"{stack.api_url}/ui/sign-in")
        await expect(other.get_by_label("API key")).to_be_visible()
    finally:
        await replay.close()


async def test_a_revoked_key_ends_the_session_within_seconds(
    stack: Stack, page: Page, http: httpx.AsyncClient, acme: Tenant
) -> None:
    """An open page whose key the admin revokes goes to the sign-in form by itself, saying why."""
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    created = await http.post(f"/api/v1/tenants/{acme.id}/api-keys", json={"name": "temp"}, headers=admin)
    assert created.status_code == 201, created.text
    await sign_in(page, stack, created.json()["api_key"])
    await expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    revoked = await http.delete(f"/api/v1/tenants/{acme.id}/api-keys/{created.json()['id']}", headers=admin)
    assert revoked.status_code == 204, revoked.text
    await expect(page.get_by_role("status")).to_contain_text("no longer accepts its key", timeout=15_000)
    await expect(page.get_by_label("API key")).to_be_visible()


def unread_streams_to(port: int) -> int:
    """Established TCP connections to `port` on this machine with received bytes no one has read:
    event streams whose reader went away without closing them (from /proc/net/tcp, Linux)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    count = 0
    for line in lines:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        unread = int(fields[4].split(":")[1], 16)
        if fields[3] == "01" and remote_port == port and unread > 0:
            count += 1
    return count


async def test_closed_pages_leave_no_event_stream_open(stack: Stack, browser: Browser, acme: Tenant) -> None:
    """Each page's event stream is relayed from the API's own; closing the pages closes both."""
    for _ in range(3):
        context = await browser.new_context()
        page = await context.new_page()
        async with page.expect_response(lambda r: r.url.endswith("/ui/events")):
            await sign_in(page, stack, acme.key)
        await page.wait_for_timeout(500)
        await context.close()
    await asyncio.sleep(3)  # several heartbeats
    assert await asyncio.to_thread(unread_streams_to, stack.api_port) == 0


@pytest.mark.skipif(not os.environ.get(SCREENSHOTS_ENV), reason=f"on demand: {SCREENSHOTS_ENV}=docs/images")
async def test_screenshots(stack: Stack, page: Page, acme: Tenant, acme_session: str) -> None:
    """Writes a 1280x800 screenshot of each page into the folder that SCREENSHOTS_ENV names."""
    out = Path(os.environ[SCREENSHOTS_ENV])
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    await page.set_viewport_size(VIEWPORT)
    base = stack.api_url
    await connected(acme, acme_session)

    async def shot(name: str) -> None:
        await page.wait_for_load_state("networkidle")
        await page.screenshot(path=out / f"dashboard-{name}.png")

    await page.goto(f"{base}/ui/sign-in")
    await shot("sign-in")
    await sign_in(page, stack, acme.key)
    await page.get_by_role("button", name="New session").click()
    await page.get_by_label("Name").fill("marketing")
    await page.get_by_role("button", name="Create").click()
    await qr_drawn(page)
    await expect(page.get_by_text(re.compile(r"Expires in \d+ s"))).to_be_visible()
    await page.screenshot(path=out / "dashboard-pairing.png")
    await expect(page.get_by_text(re.compile(r"Connected as"))).to_be_visible(timeout=LIVE_MS)
    marketing = page.url.rsplit("/", 1)[1]
    # Two simulated sessions of one host talk to each other: support writes, marketing answers.
    support_jid = (await connected(acme, acme_session))["jid"]
    marketing_phone = "+" + (await connected(acme, marketing))["jid"].split("@")[0]
    await goto(page, f"{base}/ui/sessions/{acme_session}/chats")
    thread = page.get_by_role("list", name="Chat history")
    for text in ("Olá! Your order #4521 has shipped.", "It arrives tomorrow before noon."):
        await page.get_by_label("To", exact=True).fill(marketing_phone)
        await page.get_by_label("Message", exact=True).fill(text)
        await page.get_by_role("button", name="Send", exact=True).click()
        await expect(thread.get_by_role("listitem").filter(has_text=text)).to_be_visible()
    await acme.http.post(
        f"/api/v1/sessions/{marketing}/messages",
        json={"to": support_jid, "type": "text", "text": "Obrigado! Até amanhã."},
        headers=acme.headers,
    )
    await expect(thread.get_by_role("listitem").filter(has_text="Obrigado")).to_be_visible(timeout=LIVE_MS)
    await expect(thread.locator(".msg-outbound .msg-status").last).to_have_text("read", timeout=LIVE_MS)
    await page.reload()  # the chat list too shows the last message
    await shot("conversations")
    await goto(page, f"{base}/ui/sessions")
    await shot("sessions")
    await goto(page, f"{base}/ui/messages")
    await page.get_by_role("row").filter(has_text="outbound").first.get_by_text("History").click()
    await expect(page.get_by_role("row").filter(has_text="outbound").first).to_contain_text("delivered")
    await shot("messages")
    async with Receiver() as receiver:
        await goto(page, f"{base}/ui/webhooks")
        await page.get_by_label("URL").fill(receiver.url)
        await page.get_by_role("button", name="Create webhook").click()
        await shot("webhooks")
        await acme.http.post(
            f"/api/v1/sessions/{acme_session}/messages",
            json={"to": TO, "type": "text", "text": "for the webhook"},
            headers=acme.headers,
        )
        await page.get_by_role("link", name="Deliveries").last.click()
        await expect(page.get_by_role("cell", name="succeeded").first).to_be_visible(timeout=LIVE_MS)
        await shot("deliveries")
    await goto(page, f"{base}/ui/usage")
    await shot("usage")
    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, stack, stack.admin_key)
    await shot("admin")
