"""Turning a host name into addresses: the system resolver, behind a type so tests can be the DNS."""

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence
from ipaddress import ip_address

from zaphub_runtime.egress.addresses import IPAddress
from zaphub_runtime.egress.errors import UNRESOLVED, EgressRefused

__all__ = ["Resolver", "system_resolver"]

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
"""`await resolver(host, port)`: every address the name has, in the order to try them."""


async def system_resolver(host: str, port: int) -> Sequence[IPAddress]:
    """The addresses `getaddrinfo` gives for `host` (run off the event loop by asyncio)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError):
        raise EgressRefused(UNRESOLVED) from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        # A link-local answer carries its zone (fe80::1%eth0); the address alone is what is judged.
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses
