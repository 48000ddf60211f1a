"""The egress policy: which URLs a tenant may make ZapHub request, checked from the text alone at
accept time (`check_url_syntax`) and again, with the host resolved, just before connecting (`check`).

The operator's `ZAPHUB_EGRESS_ALLOW` (CIDRs and host names, empty by default) is the only way to
reach a non-public address; everything else must be globally routable unicast.
"""

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network

import httpx

from zaphub_runtime.egress.addresses import IPAddress, host_literal, is_public
from zaphub_runtime.egress.errors import (
    CREDENTIALS_IN_URL,
    INVALID_URL,
    NOT_ALLOWED,
    PORT_NOT_ALLOWED,
    SCHEME_NOT_ALLOWED,
    UNRESOLVED,
    EgressRefused,
)
from zaphub_runtime.egress.resolution import Resolver, system_resolver
from zaphub_runtime.settings import CommonSettings

__all__ = ["MAX_URL_LENGTH", "EgressPolicy", "EgressTarget"]

MAX_URL_LENGTH = 8192
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class EgressTarget:
    """A URL that passed the policy, with the addresses its host had then; a connection for it goes
    to one of these and to nothing resolved later (that is what defeats DNS rebinding)."""

    url: httpx.URL
    host: str  # as the connection pool names it: lower case, IDNA-encoded, IPv6 without brackets
    port: int
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class _Parsed:
    url: httpx.URL
    host: str
    port: int
    literal: IPAddress | str  # the address the host spells, or the name to resolve


@dataclass(frozen=True)
class EgressPolicy:
    """What outbound requests may reach. `EgressPolicy()` allows public addresses only."""

    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    resolver: Resolver = field(default=system_resolver, repr=False, compare=False)

    @classmethod
    def from_allow_list(cls, allow: str, resolver: Resolver = system_resolver) -> "EgressPolicy":
        """`allow` is a comma-separated list of CIDRs, addresses and host names (no wildcards); an
        entry that is none of these raises ValueError, so a typo stops the service at start."""
        networks: list[IPv4Network | IPv6Network] = []
        hosts: set[str] = set()
        for raw in allow.split(","):
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            try:
                if any(c in entry for c in "/:@?#[]%\\ "):
                    raise EgressRefused(INVALID_URL)
                literal = host_literal(httpx.URL(f"http://{entry}/").raw_host.decode("ascii"))
            except (httpx.InvalidURL, EgressRefused):
                raise ValueError(f"ZAPHUB_EGRESS_ALLOW: {entry!r} is not a CIDR or host name") from None
            if not isinstance(literal, str):  # an inet_aton spelling such as 127.1
                networks.append(ip_network(literal))
            else:
                hosts.add(literal)
        return cls(tuple(networks), frozenset(hosts), resolver)

    @classmethod
    def from_settings(cls, settings: CommonSettings, resolver: Resolver = system_resolver) -> "EgressPolicy":
        return cls.from_allow_list(settings.egress_allow, resolver)

    def address_allowed(self, address: IPAddress) -> bool:
        return is_public(address) or any(address in n for n in self.allowed_networks)

    def check_url_syntax(self, url: str | httpx.URL) -> None:
        """Refuse (EgressRefused) what the URL's text alone shows is not allowed: a scheme other than
        http/https, credentials, a port out of range, a host spelling a refused address in any form,
        `localhost`. Cheap and without I/O, for accept time; `check` is still needed before sending."""
        self._parse(url)

    async def check(self, url: str | httpx.URL) -> EgressTarget:
        """Everything `check_url_syntax` checks, then resolve the host once and refuse if ANY of its
        addresses is not allowed; the target to connect to."""
        parsed = self._parse(url)
        if not isinstance(parsed.literal, str):
            addresses: tuple[IPAddress, ...] = (parsed.literal,)
        else:
            addresses = tuple(await self.resolver(parsed.literal, parsed.port))
            if not addresses:
                raise EgressRefused(UNRESOLVED)
            if parsed.literal not in self.allowed_hosts and not all(
                self.address_allowed(a) for a in addresses
            ):
                raise EgressRefused(NOT_ALLOWED)
        return EgressTarget(parsed.url, parsed.host, parsed.port, addresses)

    def _parse(self, url: str | httpx.URL) -> _Parsed:
        if isinstance(url, str) and len(url) > MAX_URL_LENGTH:
            raise EgressRefused(INVALID_URL)
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise EgressRefused(INVALID_URL) from None
        if parsed.scheme not in _DEFAULT_PORTS:
            raise EgressRefused(SCHEME_NOT_ALLOWED)
        if parsed.userinfo:
            raise EgressRefused(CREDENTIALS_IN_URL)
        port = _DEFAULT_PORTS[parsed.scheme] if parsed.port is None else parsed.port
        if not 1 <= port <= 65535:
            raise EgressRefused(PORT_NOT_ALLOWED)
        host = parsed.raw_host.decode("ascii")
        literal = host_literal(host)
        if isinstance(literal, str):
            if literal not in self.allowed_hosts and (
                literal == "localhost" or literal.endswith(".localhost")
            ):
                raise EgressRefused(NOT_ALLOWED)
        elif not self.address_allowed(literal):
            raise EgressRefused(NOT_ALLOWED)
        return _Parsed(parsed, host, port, literal)
