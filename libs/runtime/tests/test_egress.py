"""The egress policy refuses every spelling of a non-public address, pins the checked address, checks
each redirect, and bounds a request in time and size; proven against real servers on 127.0.0.1."""

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from aiohttp import web

from zaphub_runtime.egress import (
    EgressClient,
    EgressFailed,
    EgressPolicy,
    EgressRefused,
    EgressTimeout,
    EgressTooLarge,
    IPAddress,
)
from zaphub_runtime.egress import errors as reasons
from zaphub_runtime.settings import CommonSettings

PUBLIC = "93.184.215.14"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def dns(answers: dict[str, Sequence[str]]) -> Callable[[str, int], Awaitable[Sequence[IPAddress]]]:
    """A resolver standing in for the outside world's DNS; unknown names do not resolve."""

    async def resolve(host: str, port: int) -> Sequence[IPAddress]:
        if host not in answers:
            raise EgressRefused(reasons.UNRESOLVED)
        return [ipaddress.ip_address(a) for a in answers[host]]

    return resolve


@contextlib.asynccontextmanager
async def serve(
    routes: dict[str, Handler], host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """A real aiohttp server on `host`; yields its port."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def recorder(body: bytes = b"ok", seen: list[web.Request] | None = None, **kw: str) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        if seen is not None:
            seen.append(request)
        return web.Response(body=body, headers=kw)

    return handle


# -- the policy, from the URL's text and from resolution ------------------------------------------

REFUSED_LITERALS = [
    # loopback in every IPv4 spelling inet_aton accepts
    "http://127.0.0.1/",
    "http://127.0.0.1./",
    "http://127.0.0.1../",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://0X7F.0.0.1/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://127.255.255.254/",
    "http://127。0。0。1/",  # ideographic full stops, IDNA-mapped to dots
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    # unspecified, broadcast, reserved, multicast
    "http://0/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://[ff02::1]/",
    # private, CGNAT, ULA, link-local, site-local
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fec0::1]/",
    # metadata services
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",  # 169.254.169.254 in decimal
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.170.2/",
    "http://100.100.100.200/",
    "http://[fd00:ec2::254]/",
    # benchmarking, documentation, IETF assignments
    "http://198.18.0.1/",
    "http://198.19.255.1/",
    "http://192.0.2.1/",
    "http://198.51.100.1/",
    "http://203.0.113.1/",
    "http://192.0.0.8/",
    "http://[2001:db8::1]/",
    "http://[3fff::1]/",
    # IPv4 inside IPv6: mapped, compatible, translated, NAT64, 6to4, Teredo
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:8.8.8.8]/",  # mapped at all: not an address on the wire
    "http://[::127.0.0.1]/",
    "http://[::ffff:0:127.0.0.1]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::10.0.0.1]/",
    "http://[64:ff9b:1::8.8.8.8]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[2002:c0a8:101::]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    "http://[2001::1]/",
    # names that are loopback by definition
    "http://localhost/",
    "http://LOCALHOST./",
    "http://localhost:8222/varz",
    "http://nats.localhost/",
    "https://a.b.localhost./",
]


@pytest.mark.parametrize("url", REFUSED_LITERALS)
async def test_a_non_public_address_in_any_spelling_is_refused_at_accept_time_and_before_sending(
    url: str,
) -> None:
    """The literal check and the full check both refuse it, with the generic reason."""
    policy = EgressPolicy(resolver=dns({}))
    with pytest.raises(EgressRefused) as literal:
        policy.check_url_syntax(url)
    with pytest.raises(EgressRefused) as full:
        await policy.check(url)
    assert literal.value.reason == full.value.reason
    assert literal.value.reason in {reasons.NOT_ALLOWED, reasons.INVALID_URL}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", reasons.SCHEME_NOT_ALLOWED),
        ("file:///etc/passwd", reasons.SCHEME_NOT_ALLOWED),
        ("gopher://example.com:6379/_INFO", reasons.SCHEME_NOT_ALLOWED),
        ("javascript:alert(1)", reasons.SCHEME_NOT_ALLOWED),
        ("//example.com/", reasons.SCHEME_NOT_ALLOWED),
        ("http://user:pass@example.com/", reasons.CREDENTIALS_IN_URL),
        ("http://user@example.com/", reasons.CREDENTIALS_IN_URL),
        ("http://example.com\\@127.0.0.1/", reasons.CREDENTIALS_IN_URL),
        ("http://example.com:0/", reasons.PORT_NOT_ALLOWED),
        ("http://example.com:65536/", reasons.PORT_NOT_ALLOWED),
        ("http:///path", reasons.INVALID_URL),
        ("http://0x7g.1/", reasons.INVALID_URL),
        ("http://08.0.0.1/", reasons.INVALID_URL),
        ("http://1.2.3.4.5/", reasons.INVALID_URL),
        ("http://256.1/", reasons.INVALID_URL),
        ("http://1.16777216/", reasons.INVALID_URL),
        ("http://exa mple.com/", reasons.INVALID_URL),
        ("http://ⓛocalhost/", reasons.INVALID_URL),
        ("http://ｌｏｃａｌｈｏｓｔ/", reasons.INVALID_URL),
        ("http://example.com/" + "a" * 9000, reasons.INVALID_URL),
    ],
)
def test_a_url_that_is_not_plain_http_to_a_host_is_refused_with_its_reason(url: str, reason: str) -> None:
    """Scheme, credentials, port and host spelling are checked from the text alone."""
    with pytest.raises(EgressRefused) as refused:
        EgressPolicy().check_url_syntax(url)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["169.254.169.254"],
        ["100.100.100.200"],
        ["fd00:ec2::254"],
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["64:ff9b::7f00:1"],
        ["2002:7f00:1::"],
        ["0.0.0.0"],
        [PUBLIC, "127.0.0.1"],  # one bad answer among good ones is enough
        ["2606:4700:4700::1111", "fe80::1"],
    ],
)
async def test_a_name_that_resolves_to_a_non_public_address_is_refused(answers: list[str]) -> None:
    """The name passes the literal check; resolution refuses it if ANY address is not public."""
    policy = EgressPolicy(resolver=dns({"media.example.com": answers}))
    policy.check_url_syntax("https://media.example.com/a.jpg")
    with pytest.raises(EgressRefused) as refused:
        await policy.check("https://media.example.com/a.jpg")
    assert refused.value.reason == reasons.NOT_ALLOWED


async def test_a_name_that_does_not_resolve_is_refused_with_a_generic_reason() -> None:
    """No DNS answer (or an empty one) refuses with 'the host could not be resolved'."""
    policy = EgressPolicy(resolver=dns({"empty.example.com": []}))
    for url in ("https://nowhere.example.com/", "https://empty.example.com/"):
        with pytest.raises(EgressRefused) as refused:
            await policy.check(url)
        assert refused.value.reason == reasons.UNRESOLVED


async def test_the_system_resolver_is_used_by_default_and_a_real_unknown_name_is_unresolved() -> None:
    """A name under .invalid never resolves (RFC 6761); the system resolver says so generically."""
    with pytest.raises(EgressRefused) as refused:
        await EgressPolicy().check("http://nothing.invalid/")
    assert refused.value.reason == reasons.UNRESOLVED


@pytest.mark.parametrize(
    ("url", "answers"),
    [
        ("https://media.example.com/a.jpg", [PUBLIC, "2606:4700:4700::1111"]),
        ("http://8.8.8.8/", []),
        ("http://134744072/", []),  # 8.8.8.8 in decimal: odd but public
        ("http://[2606:4700:4700::1111]:8080/", []),
        ("http://[64:ff9b::8.8.8.8]/", []),  # NAT64 of a public address, as DNS64 networks answer
        ("https://xn--bcher-kva.example/", [PUBLIC]),
        ("https://bücher.example/", [PUBLIC]),
    ],
)
async def test_a_public_address_passes(url: str, answers: list[str]) -> None:
    """Public addresses pass both checks, and the target carries the addresses it was checked with."""
    policy = EgressPolicy(resolver=dns({"media.example.com": answers, "xn--bcher-kva.example": answers}))
    policy.check_url_syntax(url)
    target = await policy.check(url)
    assert target.addresses
    assert all(policy.address_allowed(a) for a in target.addresses)


async def test_the_allow_list_lets_the_operators_networks_and_names_through() -> None:
    """ZAPHUB_EGRESS_ALLOW entries pass: a CIDR, an address, a name (whatever it resolves to)."""
    policy = EgressPolicy.from_settings(
        CommonSettings(egress_allow=" 127.0.0.1, 10.8.0.0/16 ,[fd00::1], hooks.internal., LocalHost"),
        resolver=dns({"hooks.internal": ["192.168.7.7"], "other.internal": ["192.168.7.7"]}),
    )
    for url in (
        "http://127.0.0.1:9000/",
        "http://10.8.3.4/",
        "http://[fd00::1]/",
        "http://hooks.internal/",
        "http://localhost/",
    ):
        policy.check_url_syntax(url)
    assert (await policy.check("http://hooks.internal/hook")).addresses == (
        ipaddress.ip_address("192.168.7.7"),
    )
    for url in ("http://127.0.0.2/", "http://10.9.0.1/", "http://other.internal/", "http://x.localhost/"):
        with pytest.raises(EgressRefused):
            await policy.check(url)


def test_the_allow_list_is_empty_by_default_and_a_bad_entry_stops_the_service() -> None:
    """The default setting allows nothing extra; an entry that is neither CIDR nor name raises."""
    assert CommonSettings().egress_allow == ""
    policy = EgressPolicy.from_settings(CommonSettings())
    assert policy.allowed_networks == () and policy.allowed_hosts == frozenset()
    for bad in ("10.0.0.0/33", "http://x/", "host:80", "bad name"):
        with pytest.raises(ValueError, match="ZAPHUB_EGRESS_ALLOW"):
            EgressPolicy.from_allow_list(bad)


# -- the client, against real servers ------------------------------------------------------------


async def test_a_request_to_loopback_is_refused_and_never_reaches_the_server() -> None:
    """Without the allow list a local server gets nothing, by address or by `localhost`."""
    seen: list[web.Request] = []
    async with serve({"/": recorder(seen=seen)}) as port, EgressClient(EgressPolicy()) as client:
        for url in (f"http://127.0.0.1:{port}/", f"http://localhost:{port}/", f"http://2130706433:{port}/"):
            with pytest.raises(EgressRefused):
                await client.fetch(url, max_bytes=100, deadline=5)
            with pytest.raises(EgressRefused):
                await client.post(url, content=b"{}", deadline=5)
    assert seen == []


async def test_the_allow_list_lets_a_local_receiver_be_reached() -> None:
    """`ZAPHUB_EGRESS_ALLOW=127.0.0.1` (or `localhost`, through the real resolver) reaches it."""
    seen: list[web.Request] = []
    handler = recorder(b"\x89PNG", seen, **{"Content-Type": "Image/PNG; charset=binary"})
    async with serve({"/a.png": handler}) as port:
        for allow, host in (("127.0.0.1", "127.0.0.1"), ("localhost", "localhost")):
            async with EgressClient(EgressPolicy.from_allow_list(allow)) as client:
                got = await client.fetch(f"http://{host}:{port}/a.png", max_bytes=100, deadline=5)
                assert (got.status, got.content_type, got.body) == (200, "image/png", b"\x89PNG")
                assert await client.post(f"http://{host}:{port}/a.png", content=b"{}", deadline=5) == 200
    assert [r.method for r in seen] == ["GET", "POST", "GET", "POST"]
    assert seen[0].headers["Accept-Encoding"] == "identity"


async def test_dns_rebinding_cannot_move_the_connection_after_the_check() -> None:
    """The name resolves once; the connection goes to the checked address although DNS now answers
    127.0.0.1, where an internal service listens on the same port; the next check refuses."""
    answers = iter([["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"]])
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> Sequence[IPAddress]:
        calls.append(host)
        return [ipaddress.ip_address(a) for a in next(answers)]

    internal: list[web.Request] = []
    policy = EgressPolicy.from_allow_list("127.0.0.2/32", rebinding)
    async with (
        serve({"/": recorder(b"checked")}, host="127.0.0.2") as port,
        serve({"/": recorder(b"internal", internal)}, host="127.0.0.1", port=port),
        EgressClient(policy) as client,
    ):
        got = await client.fetch(f"http://rebind.example.com:{port}/", max_bytes=100, deadline=5)
        assert got.body == b"checked"
        assert calls == ["rebind.example.com"]
        with pytest.raises(EgressRefused):
            await client.fetch(f"http://rebind.example.com:{port}/", max_bytes=100, deadline=5)
    assert internal == []


def redirect_to(location: str) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": location})

    return handle


async def test_a_redirect_to_an_internal_address_is_refused_before_it_is_followed() -> None:
    """An allowed receiver's redirect to loopback or metadata, in any spelling, is checked and refused."""
    internal: list[web.Request] = []
    async with serve({"/secret": recorder(b"secret", internal)}) as port:
        routes: dict[str, Handler] = {
            "/loopback": redirect_to(f"http://127.0.0.1:{port}/secret"),
            "/decimal": redirect_to(f"http://2130706433:{port}/secret"),
            "/mapped": redirect_to(f"http://[::ffff:127.0.0.1]:{port}/secret"),
            "/localhost": redirect_to(f"http://localhost:{port}/secret"),
            "/metadata": redirect_to("http://169.254.169.254/latest/meta-data/iam/"),
            "/file": redirect_to("file:///etc/passwd"),
        }
        # The receiver is reached by an allowed name; its address, 127.0.0.2, is not itself allowed.
        policy = EgressPolicy.from_allow_list("media.example.com", dns({"media.example.com": ["127.0.0.2"]}))
        async with serve(routes, host="127.0.0.2") as edge, EgressClient(policy) as client:
            for path in routes:
                with pytest.raises(EgressRefused):
                    await client.fetch(
                        f"http://media.example.com:{edge}{path}",
                        max_bytes=100,
                        deadline=5,
                        follow_redirects=3,
                    )
    assert internal == []


async def test_redirects_are_followed_up_to_the_limit_each_checked_and_none_for_webhooks() -> None:
    """fetch follows up to `follow_redirects` hops; one more fails; post never follows."""

    async def hop(request: web.Request) -> web.Response:
        left = int(request.match_info["left"])
        if left == 0:
            return web.Response(body=b"arrived")
        return web.Response(status=307, headers={"Location": f"/r/{left - 1}"})

    policy = EgressPolicy.from_allow_list("127.0.0.1")
    async with serve({"/r/{left}": hop}) as port, EgressClient(policy) as client:
        got = await client.fetch(
            f"http://127.0.0.1:{port}/r/3", max_bytes=100, deadline=5, follow_redirects=3
        )
        assert (got.status, got.body, got.url) == (200, b"arrived", f"http://127.0.0.1:{port}/r/0")
        with pytest.raises(EgressFailed) as failed:
            await client.fetch(f"http://127.0.0.1:{port}/r/4", max_bytes=100, deadline=5, follow_redirects=3)
        assert failed.value.reason == reasons.TOO_MANY_REDIRECTS
        unfollowed = await client.fetch(f"http://127.0.0.1:{port}/r/1", max_bytes=100, deadline=5)
        assert (unfollowed.status, unfollowed.body) == (307, b"")
        assert await client.post(f"http://127.0.0.1:{port}/r/1", content=b"{}", deadline=5) == 307


async def drip(request: web.Request) -> web.StreamResponse:
    """One byte a second, forever: each read is quick, the whole never ends."""
    response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
    await response.prepare(request)
    for _ in range(3600):
        await response.write(b"x")
        await asyncio.sleep(1)
    return response


async def stall(request: web.Request) -> web.Response:
    await asyncio.sleep(3600)
    return web.Response()


async def test_a_drip_fed_or_stalled_answer_ends_at_the_total_deadline() -> None:
    """A server sending one byte per second, or nothing, is cut when the whole deadline is spent."""
    policy = EgressPolicy.from_allow_list("127.0.0.1")
    async with serve({"/drip": drip, "/stall": stall}) as port, EgressClient(policy) as client:
        for path in ("/drip", "/stall"):
            started = time.monotonic()
            with pytest.raises(EgressTimeout) as timed_out:
                await client.fetch(f"http://127.0.0.1:{port}{path}", max_bytes=10_000, deadline=1.5)
            assert 1.4 < time.monotonic() - started < 3
            assert timed_out.value.reason == reasons.TIMED_OUT
            started = time.monotonic()
            with pytest.raises(EgressTimeout):
                await client.post(
                    f"http://127.0.0.1:{port}{path}", content=b"{}", deadline=1.5, read_bytes=10_000
                )
            assert time.monotonic() - started < 3


async def test_a_body_over_the_cap_is_cut_whether_declared_or_streamed() -> None:
    """A Content-Length over the cap fails at once; a chunked body fails when the cap is passed."""

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(3600):
            await response.write(b"y" * 1024)
            await asyncio.sleep(0.001)
        return response

    policy = EgressPolicy.from_allow_list("127.0.0.1")
    async with (
        serve(
            {"/declared": recorder(b"z" * 10_000), "/chunked": chunked, "/exact": recorder(b"e" * 4096)}
        ) as port,
        EgressClient(policy) as client,
    ):
        for path in ("/declared", "/chunked"):
            with pytest.raises(EgressTooLarge) as too_large:
                await client.fetch(f"http://127.0.0.1:{port}{path}", max_bytes=4096, deadline=5)
            assert too_large.value.reason == reasons.TOO_LARGE
        got = await client.fetch(f"http://127.0.0.1:{port}/exact", max_bytes=4096, deadline=5)
        assert len(got.body) == 4096


async def test_a_cut_fetch_returns_the_head_of_a_long_body_and_a_type_filter_reads_no_body() -> None:
    """With `cut`, a declared or streamed body over the cap comes back as its first bytes; with
    `content_types`, another type fails before its body is read."""
    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(10_000):
            await response.write(b"<p>" + b"x" * 1021)
            sent.append(i)
            await asyncio.sleep(0.001)
        return response

    policy = EgressPolicy.from_allow_list("127.0.0.1")
    routes = {"/declared": recorder(b"a" * 10_000, **{"Content-Type": "text/html"}), "/endless": endless}
    async with serve(routes) as port, EgressClient(policy) as client:
        base = f"http://127.0.0.1:{port}"
        got = await client.fetch(f"{base}/declared", max_bytes=4096, deadline=5, cut=True)
        assert got.body == b"a" * 4096 and got.content_type == "text/html"
        head = await client.fetch(f"{base}/endless", max_bytes=4096, deadline=5, cut=True)
        assert len(head.body) == 4096 and head.body.startswith(b"<p>x")
        assert len(sent) < 1000  # the server was not read to its end
        with pytest.raises(EgressFailed) as wrong:
            await client.fetch(f"{base}/declared", max_bytes=4096, deadline=5, content_types={"image/png"})
        assert wrong.value.reason == reasons.UNEXPECTED_TYPE


async def test_a_webhook_post_reads_at_most_a_few_bytes_and_only_the_status_is_returned() -> None:
    """An endless error body does not hold the POST: the status comes back once read_bytes are read."""

    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        for _ in range(3600):
            await response.write(b"internal detail " * 512)
            await asyncio.sleep(0.01)
        return response

    policy = EgressPolicy.from_allow_list("127.0.0.1")
    async with serve({"/hook": endless}) as port, EgressClient(policy) as client:
        started = time.monotonic()
        status = await client.post(
            f"http://127.0.0.1:{port}/hook", content=b"{}", deadline=10, read_bytes=4096
        )
        assert status == 500
        assert time.monotonic() - started < 2


async def test_a_compressed_answer_to_an_identity_request_is_not_decoded() -> None:
    """A gzip bomb cannot grow past the cap in memory: encoded bodies are refused, not inflated."""
    policy = EgressPolicy.from_allow_list("127.0.0.1")
    handler = recorder(b"\x1f\x8b" + b"\0" * 100, **{"Content-Encoding": "gzip"})
    async with serve({"/bomb": handler}) as port, EgressClient(policy) as client:
        with pytest.raises(EgressFailed) as failed:
            await client.fetch(f"http://127.0.0.1:{port}/bomb", max_bytes=1000, deadline=5)
    assert failed.value.reason == reasons.ENCODED_RESPONSE


async def test_connection_failures_say_nothing_about_the_remote() -> None:
    """A closed port fails with the same generic reason as any other connection failure."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    async with EgressClient(EgressPolicy.from_allow_list("127.0.0.1")) as client:
        with pytest.raises(EgressFailed) as failed:
            await client.fetch(f"http://127.0.0.1:{closed_port}/", max_bytes=10, deadline=5)
        with pytest.raises(EgressFailed) as failed_post:
            await client.post(f"http://127.0.0.1:{closed_port}/", content=b"", deadline=5)
    assert str(failed.value) == str(failed_post.value) == reasons.CONNECTION_FAILED


async def test_a_cookie_set_by_one_server_is_never_sent_back() -> None:
    """The shared client keeps no cookies, so one tenant's server cannot plant one for another's request."""
    seen: list[web.Request] = []
    async with (
        serve({"/": recorder(b"ok", seen, **{"Set-Cookie": "session=abc; Path=/"})}) as port,
        EgressClient(EgressPolicy.from_allow_list("127.0.0.1")) as client,
    ):
        for _ in range(2):
            await client.fetch(f"http://127.0.0.1:{port}/", max_bytes=10, deadline=5)
    assert "Cookie" not in seen[1].headers


# -- https: pinned address, the name's SNI and certificate ---------------------------------------


def tls_pair(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext, list[str | None]]:
    """A CA, a server certificate for `name` signed by it; the server context (recording SNI) and a
    client context that trusts only that CA."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = cert("ZapHub test CA", ca_key, "ZapHub test CA", ca_key, ca=True)
    leaf = cert(name, key, "ZapHub test CA", ca_key, ca=False)
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    sni: list[str | None] = []
    server.sni_callback = lambda _sock, server_name, _ctx: sni.append(server_name)  # type: ignore[assignment]
    client = ssl.create_default_context(cadata=ca_cert.public_bytes(serialization.Encoding.PEM).decode())
    return server, client, sni


async def test_https_connects_to_the_pinned_address_with_the_names_sni_host_and_certificate(
    tmp_path: Path,
) -> None:
    """The socket goes to the checked IP; SNI, Host and certificate verification are for the name, so a
    name the certificate does not cover fails although it resolves to the same server."""
    server_tls, client_tls, sni = tls_pair(tmp_path, "media.example.com")
    seen: list[web.Request] = []
    resolver = dns({"media.example.com": ["127.0.0.1"], "other.example.com": ["127.0.0.1"]})
    policy = EgressPolicy.from_allow_list("127.0.0.1", resolver)
    async with (
        serve({"/a.jpg": recorder(b"jpeg", seen)}, tls=server_tls) as port,
        EgressClient(policy, ssl_context=client_tls) as client,
    ):
        got = await client.fetch(f"https://media.example.com:{port}/a.jpg", max_bytes=100, deadline=5)
        assert (got.status, got.body) == (200, b"jpeg")
        assert sni == ["media.example.com"]
        assert seen[0].headers["Host"] == f"media.example.com:{port}"
        with pytest.raises(EgressFailed) as failed:
            await client.fetch(f"https://other.example.com:{port}/a.jpg", max_bytes=100, deadline=5)
        assert failed.value.reason == reasons.CONNECTION_FAILED
    assert len(seen) == 1
