"""The egress policy refuses every spelling of a non-public address, pins the checked address, checks
each redirect, and bounds a request in time and size; proven against real servers on 127.0.0.1."""

import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from aiohttp import web

from zaphub_runtime.egress import (
    EgressPolicy,
    EgressRefused,
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
