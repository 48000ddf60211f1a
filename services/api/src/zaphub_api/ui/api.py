"""The dashboard's only way to data: the public REST API over loopback HTTP, with the signed-in key.

Nothing in `zaphub_api.ui` touches a store, the bus or another tenant's rows: what a page shows is
what `GET /api/v1/...` answers to the principal's key, so the dashboard can never see more than a
script holding the same key.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from zaphub_api.settings import ApiSettings

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# The event stream stays open; only connecting to it may time out.
STREAM_TIMEOUT = httpx.Timeout(None, connect=5.0)
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def own_base_url(settings: ApiSettings) -> str:
    """The URL of this API process itself: its listening address, a wildcard bind read as loopback."""
    host = _WILDCARDS.get(settings.api_host, settings.api_host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api_port}"


class KeyRejected(Exception):
    """The API answered 401: the key is unknown or was revoked, so the dashboard session ends."""


@dataclass
class ApiRefused(Exception):
    """The API answered with a problem (4xx or 5xx); `message` is what the user is shown."""

    status: int
    title: str
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.errors:
            return "; ".join(f"{e.get('field', '')}: {e.get('message', '')}" for e in self.errors)
        if self.detail and self.detail != self.title:
            return f"{self.title}: {self.detail}"
        return self.title

    def field_errors(self) -> dict[str, str]:
        """Field name to message, for showing each next to its input."""
        return {e.get("field", ""): e.get("message", "") for e in self.errors}


def _plain(message: str) -> str:
    """A field error as people read it: without pydantic's "Value error, " in front."""
    return message.removeprefix("Value error, ")


def _refused(response: httpx.Response) -> ApiRefused:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    return ApiRefused(
        status=response.status_code,
        title=str(body.get("title") or response.reason_phrase or "The API refused the request"),
        detail=str(body.get("detail") or "").replace("Value error, ", ""),
        errors=[
            {"field": str(e.get("field", "")), "message": _plain(str(e.get("message", "")))} for e in errors
        ],
    )


class Api:
    """One principal's view of the API: each call carries its key; 401 raises `KeyRejected`."""

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {key}"}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        data: dict[str, str] | None = None,
        accept: str = "application/json",
    ) -> httpx.Response:
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = await self._http.request(
                method,
                path,
                json=json,
                params=query,
                files=files,
                data=data,
                headers={**self._headers, "Accept": accept},
            )
        except httpx.HTTPError as exc:
            raise ApiRefused(503, "The API did not answer", str(exc) or type(exc).__name__) from exc
        if response.status_code == 401:
            raise KeyRejected()
        if response.status_code >= 400:
            raise _refused(response)
        return response

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.request("GET", path, params=params)).json()

    async def post(self, path: str, body: Any = None) -> Any:
        response = await self.request("POST", path, json=body if body is not None else {})
        return response.json() if response.content else None

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path)

    async def events(self) -> AsyncIterator[tuple[str, str]]:
        """The tenant's live events from `/api/v1/events` as (event type, data) until the stream ends;
        first ("open", "") once the API has subscribed (its `: connected` comment)."""
        async with self._http.stream(
            "GET",
            "/api/v1/events",
            headers={**self._headers, "Accept": "text/event-stream"},
            timeout=STREAM_TIMEOUT,
        ) as response:
            if response.status_code == 401:
                raise KeyRejected()
            if response.status_code >= 400:
                await response.aread()
                raise _refused(response)
            event, data = "", list[str]()
            async for line in response.aiter_lines():
                if line == "":
                    if data:
                        yield event or "message", "\n".join(data)
                    event, data = "", list[str]()
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "" and value == "connected":
                    yield "open", ""
                elif name == "event":
                    event = value
                elif name == "data":
                    data.append(value)
