"""Attacks on the dashboard's sign-in (/ui) against a real API process, with plain HTTP: forged forms
without the CSRF token, a readable or cross-site session cookie, another tenant's session id, a key
revoked or a session signed out while its cookie is still held, guessing keys at the sign-in form, and
oversized bodies sent to /ui without a session. Defences: a per-session CSRF token on every unsafe
request, an HttpOnly SameSite=Strict cookie holding only a random id, the API's own answer for the
signed-in key, the API's failure throttle by the browser's address, and the API's body caps."""

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest

from zaphub_devstack.services import console_script
from zaphub_devstack.testing import Stack

BURST = 10
BODY_CAP = 64 * 1024
REVOKED_WITHIN = 7.0  # the API's key cache (5 s) plus a request
CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
async def api_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("dashboard-security")
    env = {
        "ZAPHUB_AUTH_FAILURE_BURST": str(BURST),
        "ZAPHUB_AUTH_FAILURE_RATE": "0.2",
        "ZAPHUB_API_MAX_BODY_BYTES": str(BODY_CAP),
    }
    async with Stack(data_dir, env=env, services={"api": [console_script("zaphub-api")]}) as stack:
        yield stack


async def new_tenant(stack: Stack, name: str) -> tuple[str, str]:
    """A tenant's id and first key, made with the admin key."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        response = await http.post(
            "/api/v1/tenants", json={"name": name}, headers={"Authorization": f"Bearer {stack.admin_key}"}
        )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["api_key"]


async def new_key(stack: Stack, tenant_id: str) -> tuple[str, str]:
    """Another key of the tenant: its id and secret."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        response = await http.post(
            f"/api/v1/tenants/{tenant_id}/api-keys",
            json={"name": "extra"},
            headers={"Authorization": f"Bearer {stack.admin_key}"},
        )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["api_key"]


async def sign_in(browser: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    form = await browser.get("/ui/sign-in")
    token = CSRF.search(form.text)
    assert token is not None
    return await browser.post("/ui/sign-in", data={"api_key": key, "_csrf": token.group(1)}, headers=headers)


async def csrf_of(browser: httpx.AsyncClient) -> str:
    """The session's CSRF token, as a signed-in page carries it."""
    page = await browser.get("/ui/sessions")
    assert page.status_code == 200, page.text
    token = CSRF.search(page.text)
    assert token is not None
    return token.group(1)


def signed_out(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/ui/sign-in")


async def session_names(stack: Stack, key: str) -> set[str]:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        listed = await http.get("/api/v1/sessions", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200, listed.text
    return {s["name"] for s in listed.json()}


async def test_forms_without_the_right_csrf_token_are_refused(api_stack: Stack) -> None:
    """With the session cookie but no CSRF token, or a wrong one (field or header), a POST is 403 and
    changes nothing; the same form with the session's token goes through."""
    _, key = await new_tenant(api_stack, "csrf")
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as browser:
        assert (await sign_in(browser, key)).status_code == 303
        token = await csrf_of(browser)
        forged = [
            await browser.post("/ui/sessions", data={"name": "forged1"}),
            await browser.post("/ui/sessions", data={"name": "forged2", "_csrf": secrets.token_urlsafe(32)}),
            await browser.post(
                "/ui/sessions", data={"name": "forged3"}, headers={"X-CSRF-Token": secrets.token_urlsafe(32)}
            ),
            await browser.post("/ui/sessions", data={"name": "forged4", "_csrf": ""}),
        ]
        assert [r.status_code for r in forged] == [403] * 4
        assert "security token is missing or stale" in forged[0].text
        assert (await session_names(api_stack, key)) == set()
        real = await browser.post("/ui/sessions", data={"name": "real", "_csrf": token})
        assert real.status_code == 303, real.text
        assert (await session_names(api_stack, key)) == {"real"}


async def test_the_sign_in_form_needs_its_own_token(api_stack: Stack) -> None:
    """A cross-site sign-in (login CSRF) without the form's double-submit token, or with another one,
    signs no one in."""
    _, key = await new_tenant(api_stack, "login-csrf")
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as browser:
        await browser.get("/ui/sign-in")  # the form's cookie is set
        missing = await browser.post("/ui/sign-in", data={"api_key": key})
        wrong = await browser.post("/ui/sign-in", data={"api_key": key, "_csrf": secrets.token_urlsafe(32)})
        assert (missing.status_code, wrong.status_code) == (403, 403)
        assert "zaphub_ui" not in browser.cookies
        assert signed_out(await browser.get("/ui/sessions"))


async def test_the_session_cookie_is_httponly_samesite_strict_and_holds_no_key(api_stack: Stack) -> None:
    """The session cookie is HttpOnly, SameSite=Strict, scoped to /ui, a random id rather than the key,
    and Secure behind https; the sign-in form's cookie has the same flags."""
    _, key = await new_tenant(api_stack, "cookie")
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as browser:
        form = await browser.get("/ui/sign-in")
        signed_in = await sign_in(browser, key)
        behind_https = await sign_in(browser, key, **{"X-Forwarded-Proto": "https"})
    assert signed_in.status_code == 303, signed_in.text
    for response, secure in ((form, False), (signed_in, False), (behind_https, True)):
        for header in response.headers.get_list("set-cookie"):
            morsel = next(iter(SimpleCookie(header).values()))
            if not morsel.value:  # the sign-in form's cookie, expired once it is used
                continue
            assert morsel["httponly"] is True, header
            assert morsel["samesite"].lower() == "strict", header
            assert morsel["path"] == "/ui", header
            assert bool(morsel["secure"]) is secure, header
            assert key not in header and key.split("_", 2)[2] not in header  # the secret may start with _
    session_cookie = SimpleCookie(signed_in.headers.get_list("set-cookie")[0])
    assert "zaphub_ui" in session_cookie and len(session_cookie["zaphub_ui"].value) >= 40


async def test_another_tenants_session_id_is_not_found(api_stack: Stack) -> None:
    """A tenant signed in to the dashboard who opens another tenant's session (page, QR, conversations,
    commands) gets "not found" and nothing of it; the owner still sees it."""
    _, acme_key = await new_tenant(api_stack, "acme")
    _, globex_key = await new_tenant(api_stack, "globex")
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
        created = await http.post(
            "/api/v1/sessions",
            json={"name": "globex-secret"},
            headers={"Authorization": f"Bearer {globex_key}"},
        )
    assert created.status_code == 201, created.text
    theirs = created.json()["id"]
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as browser:
        assert (await sign_in(browser, acme_key)).status_code == 303
        token = await csrf_of(browser)
        answers = [
            await browser.get(f"/ui/sessions/{theirs}"),
            await browser.get(f"/ui/sessions/{theirs}/pairing"),
            await browser.get(f"/ui/sessions/{theirs}/chats/"),
            await browser.post(f"/ui/sessions/{theirs}/delete", data={"_csrf": token}),
        ]
        for answer in answers:
            assert answer.status_code == 404, (answer.request.url, answer.status_code, answer.text[:300])
            assert "not found" in answer.text
            assert "globex-secret" not in answer.text
    assert (await session_names(api_stack, globex_key)) == {"globex-secret"}


async def test_a_revoked_key_ends_its_sessions_within_seconds(api_stack: Stack) -> None:
    """Once the admin revokes the key a dashboard session signed in with, its pages send the browser to
    sign in again (saying why) within seconds, and the old cookie stays dead after that."""
    tenant_id, _ = await new_tenant(api_stack, "revoked")
    key_id, key = await new_key(api_stack, tenant_id)
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as browser:
        assert (await sign_in(browser, key)).status_code == 303
        assert (await browser.get("/ui/sessions")).status_code == 200
        async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as admin:
            revoked = await admin.delete(
                f"/api/v1/tenants/{tenant_id}/api-keys/{key_id}",
                headers={"Authorization": f"Bearer {api_stack.admin_key}"},
            )
        assert revoked.status_code == 204, revoked.text
        at = time.monotonic()
        while not signed_out(answer := await browser.get("/ui/sessions")):
            assert answer.status_code == 200, answer.text
            assert time.monotonic() - at < REVOKED_WITHIN, "the revoked key's session is still open"
            await asyncio.sleep(0.25)
        assert answer.headers["location"] == "/ui/sign-in?notice=revoked"
        # The cookie was expired in the answer; a copy kept by an attacker opens nothing either.
        stale = httpx.Cookies({"zaphub_ui": browser.cookies.get("zaphub_ui") or ""})
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30, cookies=stale) as replay:
        assert signed_out(await replay.get("/ui/sessions"))


async def test_the_event_stream_of_a_revoked_key_signs_out(api_stack: Stack) -> None:
    """An open /ui/events stream says `signed-out` (revoked) and ends within seconds of the revocation."""
    tenant_id, _ = await new_tenant(api_stack, "revoked-stream")
    key_id, key = await new_key(api_stack, tenant_id)
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as browser:
        assert (await sign_in(browser, key)).status_code == 303
        async with browser.stream("GET", "/ui/events", headers={"Accept": "text/event-stream"}) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert "connected" in await anext(lines)
            async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as admin:
                revoked = await admin.delete(
                    f"/api/v1/tenants/{tenant_id}/api-keys/{key_id}",
                    headers={"Authorization": f"Bearer {api_stack.admin_key}"},
                )
            assert revoked.status_code == 204, revoked.text

            async def until_signed_out() -> list[str]:
                seen = [line async for line in lines]
                return seen

            seen = await asyncio.wait_for(until_signed_out(), REVOKED_WITHIN + 3)
        assert "event: signed-out" in seen and "data: revoked" in seen
        assert signed_out(await browser.get("/ui/sessions"))


async def test_signing_out_ends_the_session(api_stack: Stack) -> None:
    """After sign-out the old cookie, replayed, opens nothing; a sign-out without the CSRF token (a
    cross-site one) is refused and leaves the session alone."""
    _, key = await new_tenant(api_stack, "sign-out")
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as browser:
        assert (await sign_in(browser, key)).status_code == 303
        old = browser.cookies.get("zaphub_ui") or ""
        token = await csrf_of(browser)
        assert (await browser.post("/ui/sign-out")).status_code == 403
        assert (await browser.get("/ui/sessions")).status_code == 200
        out = await browser.post("/ui/sign-out", data={"_csrf": token})
        assert signed_out(out) and out.headers["location"] == "/ui/sign-in?notice=signed-out"
    async with httpx.AsyncClient(
        base_url=api_stack.api_url, timeout=30, cookies={"zaphub_ui": old}
    ) as replay:
        assert signed_out(await replay.get("/ui/sessions"))
        assert (await replay.post("/ui/sessions", data={"name": "after", "_csrf": token})).status_code in (
            303,
            403,
        )
    assert (await session_names(api_stack, key)) == set()


async def test_pages_without_a_session_show_nothing(api_stack: Stack) -> None:
    """Every dashboard page asked for without a session (or with a made-up one) goes to sign in."""
    made_up = {"zaphub_ui": secrets.token_urlsafe(32)}
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30, cookies=made_up) as browser:
        for path in ("/ui/sessions", "/ui/messages", "/ui/webhooks", "/ui/usage", "/ui/admin", "/ui/events"):
            answer = await browser.get(path)
            assert signed_out(answer), (path, answer.status_code)


async def test_wrong_keys_at_the_sign_in_form_are_throttled_by_address(api_stack: Stack) -> None:
    """The sign-in form counts wrong keys against the browser's address in the API's own throttle: past
    its burst, 429 with Retry-After there and on the REST API alike; another address can still sign in."""
    _, key = await new_tenant(api_stack, "throttle")
    guesser = httpx.AsyncHTTPTransport(local_address="127.0.0.3")
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30, transport=guesser) as browser:
        guesses = [
            await sign_in(browser, f"zh_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}")
            for _ in range(BURST + 3)
        ]
        api = await browser.get(
            "/api/v1/sessions", headers={"Authorization": f"Bearer {secrets.token_hex(8)}"}
        )
    statuses = [g.status_code for g in guesses]
    assert statuses[:BURST] == [401] * BURST, statuses
    assert set(statuses[BURST:]) == {429}, statuses
    assert int(guesses[-1].headers["retry-after"]) >= 1
    assert "Too many failed sign-ins" in guesses[-1].text
    assert api.status_code == 429
    other = httpx.AsyncHTTPTransport(local_address="127.0.0.4")
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30, transport=other) as browser:
        assert (await sign_in(browser, key)).status_code == 303


async def test_oversized_bodies_to_the_dashboard_are_refused_unread(api_stack: Stack) -> None:
    """A body over the API's cap, sent to /ui without a session, is answered 413 (problem+json) from its
    Content-Length, before it is read or any form is parsed."""
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as browser:
        big = b"a" * (BODY_CAP + 1)
        for path in ("/ui/sign-in", "/ui/sessions"):
            answer = await browser.post(
                path, content=big, headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
            assert answer.status_code == 413, (path, answer.status_code)
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["type"].endswith("/problems/payload-too-large")
