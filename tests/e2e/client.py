"""A small REST client for end-to-end tests: what a tenant's program would do over HTTP."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class Tenant:
    def __init__(self, http: httpx.AsyncClient, body: dict[str, Any]) -> None:
        self.http = http
        self.id = body["id"]
        self.headers = {"Authorization": f"Bearer {body['api_key']}"}

    async def create_session(self, name: str = "main") -> dict[str, Any]:
        response = await self.http.post("/api/v1/sessions", json={"name": name}, headers=self.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def session(self, session_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/sessions/{session_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def connected_session(self, name: str = "main", timeout: float = 30) -> dict[str, Any]:
        created = await self.create_session(name)

        async def connected() -> dict[str, Any] | None:
            session = await self.session(created["id"])
            return session if session["status"] == "connected" else None

        return await eventually(connected, timeout, f"session {name} to connect")

    async def send_text(self, session_id: str, to: str, text: str, **headers: str) -> dict[str, Any]:
        response = await self.http.post(
            f"/api/v1/sessions/{session_id}/messages",
            json={"to": to, "type": "text", "text": text},
            headers=self.headers | headers,
        )
        assert response.status_code == 202, response.text
        return dict(response.json())

    async def message(self, message_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/messages/{message_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait_status(self, message_id: str, statuses: set[str], timeout: float) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            message = await self.message(message_id)
            return message if message["status"] in statuses else None

        return await eventually(reached, timeout, f"message {message_id} to reach {statuses}")


async def new_tenant(http: httpx.AsyncClient, admin_key: str, name: str = "acme") -> Tenant:
    response = await http.post(
        "/api/v1/tenants", json={"name": name}, headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert response.status_code == 201, response.text
    return Tenant(http, response.json())
