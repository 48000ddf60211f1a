"""Attacks on the API's quotas and bodies, each carried out against a real API process (with its own
NATS and PostgreSQL) shared by the module. The throttle of failed keys is lifted here: the attacks on
it are in test_api_keys.py."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from zaphub_api.services.messages import QUEUE_FULL_PAUSE
from zaphub_devstack.services import console_script
from zaphub_devstack.testing import Stack

MIB = 1024 * 1024


@pytest.fixture(scope="module")
async def api_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("quotas")
    env = {"ZAPHUB_AUTH_FAILURE_BURST": "100000", "ZAPHUB_OUTBOX_GRACE": "0.5"}
    async with Stack(data_dir, env=env, services={"api": [console_script("zaphub-api")]}) as stack:
        yield stack


async def new_tenant(http: httpx.AsyncClient, stack: Stack, **fields: Any) -> tuple[str, dict[str, str]]:
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    response = await http.post("/api/v1/tenants", json={"name": "t", **fields}, headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['api_key']}"}


def rss(pid: int) -> int:
    """Resident memory of the process and its children (the HTTP server's workers)."""
    process = psutil.Process(pid)
    return process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))


async def test_unauthenticated_large_body_is_refused_before_it_is_read(api_stack: Stack) -> None:
    """A 64 MiB POST without a key gets its 401 at once, and the API's memory does not grow."""
    pid = api_stack.pids()["api"]
    before = rss(pid)
    size = 64 * MIB
    reader, writer = await asyncio.open_connection("127.0.0.1", api_stack.api_port)
    path = f"/api/v1/sessions/{uuid.uuid4()}/messages"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    started = time.monotonic()
    writer.write(head.encode())
    status_line = asyncio.ensure_future(reader.readline())
    chunk = b"x" * MIB
    sent = 0
    try:
        while sent < size and not status_line.done():
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
    except ConnectionError:
        pass  # the server answered and closed: it will not read the rest
    try:
        line = await asyncio.wait_for(status_line, 5.0)
    except ConnectionError:
        # The server answered and closed with our unread bytes in its buffer, so its kernel sent a
        # reset, which can discard the 401 before we read it (the reader then holds the reset, or
        # the broken pipe our last write met). It still refused without reading.
        line = b"(reset)"
    elapsed = time.monotonic() - started
    writer.close()
    assert line.startswith(b"HTTP/1.1 401") or (line == b"(reset)" and sent < size), line
    assert elapsed < 3.0, f"the 401 took {elapsed:.1f} s"
    assert rss(pid) - before < 8 * MIB, f"RSS grew by {(rss(pid) - before) / MIB:.1f} MiB"


async def test_authenticated_body_over_the_cap_is_a_413(api_stack: Stack) -> None:
    """A tenant's JSON body beyond ZAPHUB_API_MAX_BODY_BYTES is refused with 413, not parsed."""
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
        _, auth = await new_tenant(http, api_stack)
        body = b'{"name": "' + b"x" * (3 * MIB) + b'"}'
        response = await http.post(
            "/api/v1/sessions", content=body, headers={**auth, "Content-Type": "application/json"}
        )
    assert response.status_code == 413, response.text


async def test_max_sessions_holds_under_concurrent_creates(api_stack: Stack) -> None:
    """Twenty concurrent creates against a quota of three: three sessions, seventeen 409s of their type."""
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
        _, auth = await new_tenant(http, api_stack, max_sessions=3)
        answers = await asyncio.gather(
            *(http.post("/api/v1/sessions", json={"name": f"s{i}"}, headers=auth) for i in range(20))
        )
        listed = await http.get("/api/v1/sessions", headers=auth)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] * 3 + [409] * 17, statuses
    refused = next(r for r in answers if r.status_code == 409).json()
    assert refused["type"].endswith("/problems/session-quota-exceeded")
    assert len(listed.json()) == 3


async def test_queued_sends_beyond_max_queued_are_refused(api_stack: Stack) -> None:
    """With nothing handing sends to WhatsApp, the tenant's fourth send beyond max_queued=3 is a 429
    naming the queue, with Retry-After; another tenant still sends."""
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
        _, auth = await new_tenant(http, api_stack, max_queued=3)
        session = (await http.post("/api/v1/sessions", json={"name": "s"}, headers=auth)).json()
        send = {"type": "text", "to": "5511999999999", "text": "hi"}
        url = f"/api/v1/sessions/{session['id']}/messages"
        accepted = [(await http.post(url, json=send, headers=auth)).status_code for _ in range(3)]
        refused = await http.post(url, json=send, headers=auth)
        _, other = await new_tenant(http, api_stack, max_queued=3)
        other_session = (await http.post("/api/v1/sessions", json={"name": "s"}, headers=other)).json()
        other_send = await http.post(
            f"/api/v1/sessions/{other_session['id']}/messages", json=send, headers=other
        )
    assert accepted == [202, 202, 202]
    assert refused.status_code == 429, refused.text
    assert refused.json()["type"].endswith("/problems/send-queue-full")
    assert int(refused.headers["retry-after"]) > 0
    assert other_send.status_code == 202


async def test_a_client_retrying_a_full_queue_in_a_loop_gets_one_refusal_a_second_per_connection(
    api_stack: Stack,
) -> None:
    """A tenant whose queue is full and who retries at once, ignoring Retry-After (a flood of 429s
    would take the API's CPU from every tenant): each refusal is answered after QUEUE_FULL_PAUSE, so
    eight connections in a tight loop for two seconds get about sixteen refusals, not thousands."""
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
        _, auth = await new_tenant(http, api_stack, max_queued=1)
        session = (await http.post("/api/v1/sessions", json={"name": "s"}, headers=auth)).json()
        send = {"type": "text", "to": "5511999999999", "text": "hi"}
        url = f"/api/v1/sessions/{session['id']}/messages"
        assert (await http.post(url, json=send, headers=auth)).status_code == 202
        codes: list[int] = []
        stop = time.monotonic() + 2.0

        async def loop() -> None:
            while time.monotonic() < stop:
                codes.append((await http.post(url, json=send, headers=auth)).status_code)

        await asyncio.gather(*(loop() for _ in range(8)))
    assert set(codes) == {429}
    assert len(codes) <= 8 * (2 / QUEUE_FULL_PAUSE + 1), len(codes)


async def test_max_queued_defaults_to_the_per_day_limit_and_can_be_patched(api_stack: Stack) -> None:
    """Unset, max_queued is the tenant's per-day limit (and follows it); PATCH sets it, and the next
    send beyond the new value is the queue's 429 until it is raised again."""
    admin = {"Authorization": f"Bearer {api_stack.admin_key}"}
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
        plain = (await http.post("/api/v1/tenants", json={"name": "plain"}, headers=admin)).json()
        assert plain["max_queued"] == plain["rate_limits"]["per_day"] > 0
        tenant_id, auth = await new_tenant(http, api_stack, rate_limits={"per_day": 500})
        path = f"/api/v1/tenants/{tenant_id}"
        assert (await http.get(path, headers=admin)).json()["max_queued"] == 500
        limits = {"per_minute": 5, "per_hour": 6, "per_day": 7}
        lowered = await http.patch(path, json={"rate_limits": limits}, headers=admin)
        assert lowered.status_code == 200 and lowered.json()["max_queued"] == 7, lowered.text

        patched = await http.patch(path, json={"max_queued": 2}, headers=admin)
        assert patched.status_code == 200 and patched.json()["max_queued"] == 2, patched.text
        assert (await http.get(path, headers=admin)).json()["max_queued"] == 2
        session = (await http.post("/api/v1/sessions", json={"name": "s"}, headers=auth)).json()
        url = f"/api/v1/sessions/{session['id']}/messages"
        send = {"type": "text", "to": "5511999999999", "text": "hi"}
        accepted = [(await http.post(url, json=send, headers=auth)).status_code for _ in range(2)]
        refused = await http.post(url, json=send, headers=auth)
        raised = await http.patch(path, json={"max_queued": 3}, headers=admin)
        await asyncio.sleep(1.5)  # the API counts a tenant's queue room once a second (QUEUE_RECOUNT)
        again = await http.post(url, json=send, headers=auth)
        bad = await http.patch(path, json={"max_queued": -1}, headers=admin)
    assert accepted == [202, 202]
    assert refused.status_code == 429 and refused.json()["type"].endswith("/problems/send-queue-full")
    assert raised.json()["max_queued"] == 3 and again.status_code == 202, again.text
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["max_queued"], bad.text


async def test_huge_offset_is_a_422_not_a_500(api_stack: Stack) -> None:
    """An offset past 2^63 (and one past the bound) on every list route is a 422 naming `offset`."""
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
        _, auth = await new_tenant(http, api_stack)
        session = (await http.post("/api/v1/sessions", json={"name": "s"}, headers=auth)).json()
        admin = {"Authorization": f"Bearer {api_stack.admin_key}"}
        routes = [
            ("/api/v1/sessions", auth),
            (f"/api/v1/sessions/{session['id']}/messages", auth),
            ("/api/v1/webhooks", auth),
            ("/api/v1/tenants", admin),
        ]
        for path, headers in routes:
            for offset in (2**64, 10**7):
                response = await http.get(path, params={"offset": str(offset)}, headers=headers)
                assert response.status_code == 422, (path, response.text)
                assert [e["field"] for e in response.json()["errors"]] == ["offset"], response.text


async def test_malformed_key_costs_no_query(api_stack: Stack) -> None:
    """Keys of the wrong prefix, length or alphabet are 401 while `api_keys` is locked against every
    reader, so they read nothing; a well-formed unknown key (the control) waits for the lock."""
    malformed = [
        "nope",
        "zh_",
        "xx_0123abcd_" + "a" * 43,
        "zh_0123abcd_" + "a" * 42,
        "zh_0123abcd_" + "a" * 44,
        "zh_0123ABCD_" + "a" * 43,
        "zh_0123abcd_" + "!" * 43,
        "zh_0123abcd_" + "a" * 10_000,
    ]
    db = await asyncpg.connect(api_stack.database_url)
    try:
        async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
            lock = db.transaction()
            await lock.start()
            try:
                await db.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
                for _ in range(25):
                    for key in malformed:
                        response = await asyncio.wait_for(
                            http.get("/api/v1/sessions", headers={"Authorization": f"Bearer {key}"}), 2.0
                        )
                        assert response.status_code == 401, response.text
                unknown = "zh_0123abcd_" + "a" * 43
                control = asyncio.ensure_future(
                    http.get("/api/v1/sessions", headers={"Authorization": f"Bearer {unknown}"})
                )
                await asyncio.sleep(1.0)
                assert not control.done(), "a well-formed key should have queried api_keys"
            finally:
                await lock.rollback()
            assert (await asyncio.wait_for(control, 10)).status_code == 401
    finally:
        await db.close()


async def test_upload_beyond_the_media_cap_is_cut_while_it_streams(api_stack: Stack) -> None:
    """A tenant's chunked multipart upload (no Content-Length) is answered 413 once it passes the media
    cap plus the form's margin, long before its 64 MiB are sent."""
    async with httpx.AsyncClient(base_url=api_stack.api_url, timeout=30) as http:
        _, auth = await new_tenant(http, api_stack)
        session = (await http.post("/api/v1/sessions", json={"name": "s"}, headers=auth)).json()
    reader, writer = await asyncio.open_connection("127.0.0.1", api_stack.api_port)
    head = (
        f"POST /api/v1/sessions/{session['id']}/messages/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {auth['Authorization']}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    writer.write(head.encode())
    status_line = asyncio.ensure_future(reader.readline())
    chunk = b"x" * MIB
    sent = 0
    try:
        while sent < 64 * MIB and not status_line.done():
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            sent += len(chunk)
            await asyncio.sleep(0)
    except ConnectionError:
        pass
    line = await asyncio.wait_for(status_line, 10.0)
    writer.close()
    assert line.startswith(b"HTTP/1.1 413"), line
    assert sent < 40 * MIB, f"{sent / MIB:.0f} MiB were taken before the 413"
