"""The one HTTP client of the CLI: base URL, the key's header, problem+json errors, the SSE stream, and
the one place where those errors become a message on stderr and exit code 1."""

import json
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import httpx
import typer
from httpx_sse import SSEError, aconnect_sse

from zaphub_cli import config, output

API_PREFIX = "/api/v1"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class CliError(Exception):
    """Something the user must fix or know about, said on stderr with exit code 1."""


class ApiUnreachable(CliError):
    """No HTTP answer at all: nothing listens at the URL, DNS, TLS, a timeout."""


class NotLoggedIn(CliError):
    def __init__(self, admin: bool) -> None:
        which = "the admin key" if admin else "a tenant's API key"
        super().__init__(f"no API key: run `zaphub login --key ...` with {which}, or set ZAPHUB_KEY")


@dataclass
class ApiProblem(Exception):
    """The API refused: its problem+json (RFC 9457) answer."""

    status: int
    title: str
    detail: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"

    @classmethod
    def from_response(cls, response: httpx.Response) -> "ApiProblem":
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "title" not in body:
            text = response.text.strip()[:500]
            return cls(response.status_code, response.reason_phrase or "HTTP error", text, body=body)
        fields = [
            (str(e.get("field", "")), str(e.get("message", "")))
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ]
        return cls(response.status_code, str(body["title"]), str(body.get("detail") or ""), fields, body)


def root_url(url: str) -> str:
    """`http://host:3000`, also when given with a trailing slash or the `/api/v1` prefix."""
    return url.strip().rstrip("/").removesuffix(API_PREFIX).rstrip("/")


class Api:
    """A session with the API under one key; `get`, `post` and `delete` return the answer's JSON."""

    def __init__(self, url: str, key: str, transport: httpx.BaseTransport | None = None) -> None:
        self.url = root_url(url)
        self._headers = {
            "Authorization": f"Bearer {key}",
            "User-Agent": f"zaphub-cli/{version('zaphub-cli')}",
        }
        self._http = httpx.Client(
            base_url=self.url + API_PREFIX, headers=self._headers, timeout=TIMEOUT, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Api":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The answer of a 2xx; `ApiProblem` for anything else."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=body, params=query, headers=headers)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise ApiProblem.from_response(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params).json()

    def get_or_none(self, path: str, **params: Any) -> Any:
        """Like `get`, but None on a 404 (a resource that may not be there yet)."""
        try:
            return self.get(path, **params)
        except ApiProblem as problem:
            if problem.status == 404:
                return None
            raise

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        response = self.call("POST", path, body=body, headers=headers)
        return response.json() if response.content else None

    def delete(self, path: str) -> None:
        self.call("DELETE", path)

    async def events(
        self, types: str | None, opened: Callable[[], None] = lambda: None
    ) -> AsyncGenerator[dict[str, Any]]:
        """The tenant's live events (CloudEvents) from `GET /events`, as they come, until cancelled;
        `opened()` is called once the API has accepted the stream."""
        params = {"types": types} if types else {}
        # No read timeout: the stream is quiet between events (the server sends heartbeat comments).
        timeout = httpx.Timeout(TIMEOUT.connect, read=None)
        try:
            async with (
                httpx.AsyncClient(
                    base_url=self.url + API_PREFIX, headers=self._headers, timeout=timeout
                ) as http,
                aconnect_sse(http, "GET", "/events", params=params) as source,
            ):
                if source.response.is_error:
                    await source.response.aread()
                    raise ApiProblem.from_response(source.response)
                opened()
                async for event in source.aiter_sse():
                    try:
                        yield json.loads(event.data)
                    except ValueError:
                        continue
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        except SSEError as exc:
            raise CliError(f"{self.url}{API_PREFIX}/events is not an event stream: {exc}") from exc

    def _unreachable(self, exc: httpx.TransportError) -> ApiUnreachable:
        reason = str(exc) or type(exc).__name__
        return ApiUnreachable(
            f"cannot reach the ZapHub API at {self.url} ({reason}); is it running? "
            "Set ZAPHUB_URL or run `zaphub login --url ...`"
        )


@contextmanager
def reporting() -> Iterator[None]:
    """Errors raised in the block are printed on stderr and end the command with exit code 1."""
    try:
        yield
    except ApiProblem as problem:
        output.problem(problem.status, problem.title, problem.detail, problem.fields)
        raise typer.Exit(1) from None
    except (CliError, config.ConfigError) as exc:
        output.error(str(exc))
        raise typer.Exit(1) from None


@contextmanager
def connect(admin: bool = False) -> Iterator[Api]:
    """An `Api` with the configured URL and key (the admin key for admin routes), errors reported."""
    with reporting():
        settings = config.load()
        key = settings.admin() if admin else settings.key
        if not key:
            raise NotLoggedIn(admin)
        with Api(settings.url, key) as api:
            yield api
