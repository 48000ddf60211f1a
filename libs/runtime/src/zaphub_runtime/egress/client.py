"""An HTTP client whose every request passes the egress policy and cannot be turned against the inside.

Each hop is checked (`EgressPolicy.check`) and the connection is pinned to an address that check
saw: the connection pool's network backend connects to that IP while the request keeps the name, so
the Host header, TLS SNI and certificate verification are for the name. Redirects are followed by
hand, each through the policy; a total deadline covers resolution, connection, redirects and body;
a byte cap stops the body. Errors leave as the named egress errors, with generic reasons only.
"""

import asyncio
import contextlib
import contextvars
import http.cookiejar
import ssl
import urllib.request
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpcore
import httpx

from zaphub_runtime.egress.errors import (
    BAD_REDIRECT,
    ENCODED_RESPONSE,
    NOT_ALLOWED,
    TOO_MANY_REDIRECTS,
    UNEXPECTED_TYPE,
    EgressError,
    EgressFailed,
    EgressRefused,
    EgressTimeout,
    EgressTooLarge,
)
from zaphub_runtime.egress.policy import EgressPolicy, EgressTarget

__all__ = ["EgressClient", "EgressResponse"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")
_NETWORK_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
    httpx.HTTPError,
    OSError,  # ssl.SSLError included
)

# The target of the request being sent by this task; the backend connects only to its addresses.
_PIN: contextvars.ContextVar[EgressTarget | None] = contextvars.ContextVar("egress_pin", default=None)


@dataclass(frozen=True, slots=True)
class EgressResponse:
    """What a fetch got. `body` is the body of a 2xx answer (at most the cap); empty otherwise, so a
    remote error page never reaches a tenant."""

    status: int
    headers: Mapping[str, str]
    content_type: str  # the media type alone, lower case: "image/png"; "" when not given
    body: bytes
    url: str  # after redirects


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        target = _PIN.get()
        if target is None or (target.host, target.port) != (host, port):
            raise EgressRefused(NOT_ALLOWED)  # a connection nothing checked: never made
        failure: Exception = EgressFailed()
        for address in target.addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:  # try the next checked address, as happy eyeballs would
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused(NOT_ALLOWED)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """httpcore's and httpx's errors as egress errors; the original stays as `__cause__` for the
    operator's logs, never for the tenant."""
    try:
        yield
    except EgressError:
        raise
    except (httpcore.TimeoutException, httpx.TimeoutException) as exc:
        raise EgressTimeout() from exc
    except _NETWORK_ERRORS as exc:
        raise EgressFailed() from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with _mapped_errors():
                await close()


class _PinnedTransport(httpx.AsyncBaseTransport):
    """httpx's default transport, with the pinned backend and no proxy, retry or environment."""

    def __init__(self, ssl_context: ssl.SSLContext, max_connections: int) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
            keepalive_expiry=5.0,
            network_backend=_PinnedBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped_errors():
            response = await self._pool.handle_async_request(core)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class EgressClient:
    """`async with EgressClient(policy) as client:` then `fetch` (media: body, capped) or `post`
    (webhooks: status only). One client per service, shared by its tenants; cookies are never kept."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
        user_agent: str = "zaphub",
    ) -> None:
        self._policy = policy
        self._http = httpx.AsyncClient(
            transport=_PinnedTransport(ssl_context or httpx.create_ssl_context(), max_connections),
            headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
            follow_redirects=False,
            trust_env=False,  # no proxy, netrc or certificate settings from the environment
        )
        # One tenant's server must not set a cookie that another tenant's request would carry.
        self._http.cookies.jar.set_policy(_RefuseCookies())

    async def __aenter__(self) -> Self:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch(
        self,
        url: str,
        *,
        max_bytes: int,
        deadline: float,
        follow_redirects: int = 0,
        headers: Mapping[str, str] | None = None,
        content_types: Collection[str] | None = None,
        cut: bool = False,
    ) -> EgressResponse:
        """GET `url`, following up to `follow_redirects` redirects (each checked; one more raises
        EgressFailed, 0 returns the 3xx as it is), all within `deadline` seconds, body included. A 2xx
        body longer than `max_bytes` raises EgressTooLarge, as soon as declared or streamed; with
        `cut`, its first `max_bytes` are returned instead and the rest is never read (a page's head).
        With `content_types`, a 2xx of any other media type raises EgressFailed before its body is read."""
        if follow_redirects < 0:
            raise ValueError("follow_redirects must be 0 or more")
        types = None if content_types is None else frozenset(t.lower() for t in content_types)
        try:
            async with asyncio.timeout(deadline):
                return await self._fetch(
                    url, max_bytes, deadline, follow_redirects, dict(headers or {}), types, cut
                )
        except TimeoutError:
            raise EgressTimeout() from None

    async def post(
        self,
        url: str,
        *,
        content: bytes,
        deadline: float,
        headers: Mapping[str, str] | None = None,
        read_bytes: int = 4096,
    ) -> int:
        """POST `content` to `url` and return the status code; redirects are not followed (a 3xx is
        returned as the status). At most `read_bytes` of the answer are read, then the connection is
        dropped; nothing of it is returned. The whole exchange ends within `deadline` seconds."""
        try:
            async with asyncio.timeout(deadline):
                target = await self._policy.check(url)
                response = await self._send("POST", target, dict(headers or {}), content, deadline)
                try:
                    await _read(response, read_bytes, cap=False)
                finally:
                    await response.aclose()
                return response.status_code
        except TimeoutError:
            raise EgressTimeout() from None

    async def _fetch(
        self,
        url: str,
        max_bytes: int,
        deadline: float,
        follow_redirects: int,
        headers: dict[str, str],
        content_types: frozenset[str] | None,
        cut: bool,
    ) -> EgressResponse:
        next_url: str | httpx.URL = url
        for hop in range(follow_redirects + 1):
            target = await self._policy.check(next_url)
            response = await self._send("GET", target, headers, None, deadline)
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location is not None and follow_redirects:
                    if hop == follow_redirects:
                        raise EgressFailed(TOO_MANY_REDIRECTS)
                    try:
                        next_url = target.url.join(location)
                    except (httpx.InvalidURL, TypeError, ValueError):
                        raise EgressRefused(BAD_REDIRECT) from None
                    if _origin(next_url) != _origin(target.url):
                        headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
                    continue
                body = b""
                content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                if 200 <= response.status_code < 300:
                    if response.headers.get("content-encoding", "identity").lower() != "identity":
                        raise EgressFailed(ENCODED_RESPONSE)
                    if content_types is not None and content_type not in content_types:
                        raise EgressFailed(UNEXPECTED_TYPE)
                    declared = response.headers.get("content-length", "")
                    if not cut and declared.isdigit() and int(declared) > max_bytes:
                        raise EgressTooLarge()
                    body = await _read(response, max_bytes, cap=not cut)
                return EgressResponse(
                    response.status_code, response.headers, content_type, body, str(target.url)
                )
            finally:
                await response.aclose()
        raise AssertionError("unreachable: the loop returns or raises")

    async def _send(
        self,
        method: str,
        target: EgressTarget,
        headers: dict[str, str],
        content: bytes | None,
        deadline: float,
    ) -> httpx.Response:
        request = self._http.build_request(
            method, target.url, headers=headers, content=content, timeout=httpx.Timeout(deadline)
        )
        token = _PIN.set(target)
        try:
            with _mapped_errors():
                return await self._http.send(request, stream=True)
        finally:
            _PIN.reset(token)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


async def _read(response: httpx.Response, limit: int, *, cap: bool) -> bytes:
    """At most `limit` bytes of the body; past it, EgressTooLarge if `cap`, else stop reading."""
    chunks: list[bytes] = []
    total = 0
    if limit <= 0 and not cap:
        return b""
    with _mapped_errors():
        async for chunk in response.aiter_raw():
            total += len(chunk)
            if total > limit:
                if cap:
                    raise EgressTooLarge()
                chunks.append(chunk[: limit - (total - len(chunk))])
                break
            chunks.append(chunk)
    return b"".join(chunks)


class _RefuseCookies(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return False
