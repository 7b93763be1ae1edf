"""Which addresses an outbound fetch may connect to, and a resolver that enforces it.

Why: provider answers carry URLs the gateway then downloads. Without a guard a hostile or
compromised upstream can make the gateway read its own loopback services, the cloud metadata
endpoint (169.254.169.254) or anything on the private network. The check happens on the
resolved address, and ``GuardedResolver`` hands aiohttp only the addresses it checked, so a
second DNS answer (rebinding) cannot swap in another one::

    refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allow_private=False)  # "loopback"
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow_private=False))
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

from aiohttp.abc import AbstractResolver, ResolveResult

log = logging.getLogger("imagegate.net")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CGNAT = ipaddress.ip_network("100.64.0.0/10")
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # 0.x.y.z may reach the local host
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Never reachable through the guard, even with ``allow_private``: the metadata endpoint lives
# in link-local, and these ranges are not unicast hosts anyone serves images from.
ALWAYS_REFUSED = ("unspecified", "multicast", "link-local", "reserved")


class RefusedAddress(OSError):
    """The URL's host is (or resolves only to) an address the guard refuses."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), else None."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def category(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address (``loopback``, ``private``...), or None."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        found = category(inner)
        # An IPv4-mapped address *is* its IPv4 address; 6to4/NAT64 must pass on both sides.
        if found is not None or (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped):
            return found
    if isinstance(ip, ipaddress.IPv6Address) and ip.teredo is not None:
        server, client = ip.teredo
        return category(server) or category(client) or "reserved"
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in THIS_NETWORK):
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_link_local:
        return "link-local"
    if ip.is_loopback:
        return "loopback"
    if ip.is_reserved:
        return "reserved"
    if isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT:
        return "private"
    if ip.is_private or not ip.is_global:
        return "private"
    return None


def refusal(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why a fetch may not connect to ``ip``, or None when it may."""
    found = category(ip)
    if found is None or (allow_private and found not in ALWAYS_REFUSED):
        return None
    return found


def looks_like_ip(host: str) -> bool:
    """Hosts aiohttp connects to without asking the resolver (it treats them as literals)."""
    return ":" in host or host.replace(".", "").isdigit()


def check_literal(host: str, *, allow_private: bool) -> None:
    """Refuse an IP-literal host the guard would refuse (the resolver never sees those)."""
    if not looks_like_ip(host):
        return
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise RefusedAddress("not a canonical IP address") from None
    reason = refusal(ip, allow_private=allow_private)
    if reason is not None:
        raise RefusedAddress(reason)


class GuardedResolver(AbstractResolver):
    """Resolves once, drops refused addresses and returns only the ones that passed."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, family=family, flags=socket.AI_ADDRCONFIG
        )
        allowed: list[ResolveResult] = []
        refused: set[str] = set()
        for fam, _, proto, _, sockaddr in infos:
            address = str(sockaddr[0])
            try:
                ip = ipaddress.ip_address(address.split("%", 1)[0])
            except ValueError:
                refused.add("unparsable")
                continue
            reason = refusal(ip, allow_private=self.allow_private)
            if reason is not None:
                refused.add(reason)
                continue
            allowed.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=int(sockaddr[1]),
                    family=fam,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not allowed:
            log.debug("fetch guard refused a host resolving only to %s", sorted(refused))
            raise RefusedAddress("no public address")
        return allowed

    async def close(self) -> None:
        return None
