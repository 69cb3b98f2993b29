"""Which IP addresses the gateway may connect to for a URL a client named.

The resolver that enforces it, `providers._resolver.PublicOnlyResolver`, lives apart: it needs aiohttp, which a worker
loads on its first upstream call rather than at start (issue 17, RSS).

An address is judged by what it reaches: IPv6 forms that embed an IPv4 address (IPv4-mapped and -compatible,
IPv4-translated, NAT64, 6to4, Teredo) are judged by the embedded address, since a translator or tunnel on the path
delivers them there: `64:ff9b::7f00:1` is 127.0.0.1 behind NAT64.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

_NAT64 = ip_network("64:ff9b::/96")
"""RFC 6052 well-known prefix: the last 32 bits are the IPv4 address."""
_NAT64_LOCAL = ip_network("64:ff9b:1::/48")
"""RFC 8215 local-use prefix: translated inside the operator's own network, so never public."""
_IPV4_COMPATIBLE = ip_network("::/96")
_IPV4_TRANSLATED = ip_network("::ffff:0:0:0/96")
"""RFC 2765 (SIIT)."""


def embedded_ipv4(address: IPv6Address) -> list[IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and would deliver to (none for a plain IPv6 address)."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)  # (server, client)
    if address in _NAT64 or address in _IPV4_COMPATIBLE or address in _IPV4_TRANSLATED:
        return [IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def is_public_address(host: str) -> bool:
    """Whether `host` (an IP address, IPv6 zone allowed) is a public unicast address, judged by what it reaches."""
    address = ip_address(host.split("%", 1)[0])
    if isinstance(address, IPv6Address):
        if address in _NAT64_LOCAL or address.is_site_local:
            return False
        if embedded := embedded_ipv4(address):
            return all(is_public_address(str(v4)) for v4 in embedded)
    return address.is_global and not address.is_multicast


class NonPublicAddress(OSError):
    """A name resolved to an address the gateway does not connect to for clients."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to the non-public address {address}")
        self.host = host
        self.address = address
