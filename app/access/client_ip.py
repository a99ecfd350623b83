"""The client address a rate limit counts: the peer, or what a trusted proxy says.

``X-Forwarded-For`` is only believed from the proxies a deployment names: anyone else could
write any address in it and get a fresh bucket with each request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["TrustedProxies", "bucket_key", "client_ip"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# An IPv6 host usually holds a whole /64: counting single addresses would hand it 2**64
# buckets.
_IPV6_BUCKET_PREFIX = 64


class TrustedProxies:
    """The proxies (addresses or CIDR networks) whose ``X-Forwarded-For`` is believed.

    Examples
    --------
    >>> proxies = TrustedProxies(["10.0.0.0/8", "::1"])
    >>> proxies.trusts("10.1.2.3"), proxies.trusts("192.0.2.1"), proxies.trusts("junk")
    (True, False, False)
    >>> TrustedProxies(["not-an-ip"])
    Traceback (most recent call last):
    ...
    ValueError: trusted proxy 'not-an-ip': not an IP address or network
    """

    __slots__ = ("_networks",)

    def __init__(self, entries: Iterable[str] = ()) -> None:
        networks: list[_Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"trusted proxy {entry!r}: not an IP address or network") from None
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        parsed = _parse(address)
        return parsed is not None and any(parsed in network for network in self._networks)


def client_ip(peer: str | None, forwarded_for: str | None, proxies: TrustedProxies) -> str:
    """The address of the client behind ``peer`` (the TCP peer of the request).

    From a trusted proxy, ``X-Forwarded-For`` is read from the right: each trusted hop
    passes on to the address before it, and the first address not trusted is the client
    (addresses further left were written by the client itself and prove nothing).

    Examples
    --------
    >>> proxies = TrustedProxies(["10.0.0.0/8"])
    >>> client_ip("10.0.0.5", "198.51.100.7, 10.0.0.9", proxies)
    '198.51.100.7'
    >>> client_ip("10.0.0.5", "6.6.6.6, 198.51.100.7", proxies)  # the client wrote 6.6.6.6
    '198.51.100.7'
    >>> client_ip("203.0.113.9", "198.51.100.7", proxies)  # not from a trusted proxy
    '203.0.113.9'
    >>> client_ip(None, None, proxies)
    'unknown'
    """
    address = peer or "unknown"
    if not forwarded_for or not proxies.trusts(address):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        if _parse(hop) is None:
            return address  # garbage from here on: the last good hop is all we know
        address = hop
        if not proxies.trusts(hop):
            return hop
    return address


def bucket_key(address: str) -> str:
    """The rate-limit bucket of an address: itself for IPv4, its /64 for IPv6.

    Examples
    --------
    >>> bucket_key("198.51.100.7"), bucket_key("2001:db8::1"), bucket_key("2001:db8::2")
    ('198.51.100.7', '2001:db8::/64', '2001:db8::/64')
    >>> bucket_key("::ffff:198.51.100.7")
    '198.51.100.7'
    """
    parsed = _parse(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/{_IPV6_BUCKET_PREFIX}", strict=False))
    return str(parsed)


def _parse(address: str) -> _Address | None:
    try:
        # A zone id (fe80::1%eth0) names the link, not the host.
        return ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
