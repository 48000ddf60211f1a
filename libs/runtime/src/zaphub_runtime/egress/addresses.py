"""Which IP addresses a tenant's request may reach, and how a URL's host spells one.

Only globally routable unicast addresses pass. `ipaddress.is_global` is the base, but its tables
differ between Python versions and let multicast, site-local and IPv4-mapped addresses through, so
the special-purpose ranges are also listed here and checked first.
"""

import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from zaphub_runtime.egress.errors import INVALID_URL, EgressRefused

__all__ = ["IPAddress", "host_literal", "is_public"]

IPAddress = IPv4Address | IPv6Address

_REFUSED_V4 = tuple(
    IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", 0.0.0.0 included
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # CGNAT; Alibaba's metadata 100.100.100.200 is in it
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local; AWS/GCP/Azure metadata 169.254.169.254
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation TEST-NET-2
        "203.0.113.0/24",  # documentation TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, 255.255.255.255 broadcast included
    )
)

_REFUSED_V6 = tuple(
    IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback, IPv4-compatible (::127.0.0.1)
        "::ffff:0:0/96",  # IPv4-mapped (::ffff:127.0.0.1)
        "::ffff:0:0:0/96",  # IPv4-translated
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments: Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: the embedded IPv4 would be reached through whatever relay is near
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local; AWS's IPv6 metadata fd00:ec2::254 is in it
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)

_METADATA = frozenset(
    ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)

_NAT64 = IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST_V6 = IPv6Network("2000::/3")

_NUMERIC_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def is_public(address: IPAddress) -> bool:
    """Whether `address` is globally routable unicast, the only kind a tenant's request may reach."""
    if address in _METADATA:
        return False
    if isinstance(address, IPv4Address):
        return address.is_global and not any(address in n for n in _REFUSED_V4)
    if address.scope_id is not None:
        return False
    if address in _NAT64:
        # DNS64 networks answer 64:ff9b::a.b.c.d for IPv4-only hosts: judge the IPv4 inside.
        return is_public(IPv4Address(int(address) & 0xFFFFFFFF))
    return address in _GLOBAL_UNICAST_V6 and address.is_global and not any(address in n for n in _REFUSED_V6)


def _ipv4_number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part, 10)


def _ipv4_literal(host: str) -> IPv4Address | None:
    """The IPv4 address a host spells the way inet_aton (and the WHATWG URL standard) reads it:
    decimal `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`, short `127.1`; None for a name."""
    parts = host.split(".")
    if not _NUMERIC_PART.match(parts[-1]):
        return None  # a name: its last label is not a number
    if len(parts) > 4 or not all(_NUMERIC_PART.match(p) for p in parts):
        raise EgressRefused(INVALID_URL)
    try:
        numbers = [_ipv4_number(p) for p in parts]
    except ValueError:  # 08, 0x7g
        raise EgressRefused(INVALID_URL) from None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise EgressRefused(INVALID_URL)
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return IPv4Address(value)


def host_literal(host: str) -> IPAddress | str:
    """The address a URL host (as httpx parsed it: lower case, IDNA-encoded, no brackets) spells, or
    the host name with trailing dots removed; refuses what is neither."""
    if ":" in host:
        if "%" in host:  # a zone id: link-local by construction
            raise EgressRefused(INVALID_URL)
        try:
            return IPv6Address(host)
        except ValueError:
            raise EgressRefused(INVALID_URL) from None
    name = host.rstrip(".")
    if not name:
        raise EgressRefused(INVALID_URL)
    literal = _ipv4_literal(name)
    if literal is not None:
        return literal
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise EgressRefused(INVALID_URL)
    return name
