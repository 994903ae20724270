"""The address policy: which addresses the fetcher may connect to (the SSRF guard).

The origins named in the config (`sources[].url`) are trusted, fully. A request
to any other origin (a redirect hop, a statement link found in a feed) must not
connect to an address that belongs to the machine or its networks:

    reason       addresses                                             IPv6 forms
    metadata     cloud metadata: 169.254.169.254, 169.254.170.2,       fd00:ec2::254
                 100.100.100.200
    loopback     127.0.0.0/8                                           ::1
    private      RFC 1918: 10/8, 172.16/12, 192.168/16                 fc00::/7 (ULA), fec0::/10
    link_local   169.254.0.0/16                                        fe80::/10
    cgnat        carrier-grade NAT, 100.64.0.0/10
    unspecified  0.0.0.0/8 (Linux connects 0.0.0.0 to the host)        ::
    multicast    224.0.0.0/4                                           ff00::/8
    reserved     240/4, broadcast, documentation and benchmarking      every other address
                 ranges, and every other address that is not           Python does not call
                 globally reachable (`ipaddress.is_global`)            global, incl. ::/8

An IPv6 address that carries an IPv4 address is judged by that IPv4 address:
IPv4-mapped (::ffff:127.0.0.1), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
The reason is a metric label: the set is bounded (`REFUSAL_REASONS`).

Where it is enforced (see `client.py`):

* before each hop, on the hop's URL: an IP-literal host is judged there,
  since aiohttp never hands a literal to the resolver;
* at connect time, by `GuardedResolver`, which wraps aiohttp's resolver and
  drops the forbidden addresses from the answer for a host name whose origin
  is not trusted. aiohttp connects only to the addresses the resolver
  returned, so a name that resolves to 127.0.0.1 (DNS rebinding) is caught
  where it matters, and the filtered answer is what aiohttp's DNS cache keeps.
  A mixed answer keeps its public addresses; an answer left empty is refused.

Trust is keyed by (host, port), with the scheme's default port filled in,
because a resolver sees only those two: trusting `http://10.0.0.8:8080` trusts
`https://10.0.0.8:8080` as well, which is the same socket endpoint. Hosts are
compared in their ASCII form (`yarl.URL.raw_host`, punycode for IDNs), a
trailing dot ignored.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

__all__ = [
    "REFUSAL_REASONS",
    "AddressGuard",
    "AddressRefusedError",
    "GuardedResolver",
    "Refusal",
    "address_class",
    "describe_reason",
    "origin_key",
]

OriginKey = tuple[str, int]  # (ASCII host, port)

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DESCRIPTIONS: Final[dict[str, str]] = {
    "metadata": "cloud metadata address",
    "loopback": "loopback address",
    "private": "private address",
    "link_local": "link-local address",
    "cgnat": "carrier-grade NAT address",
    "unspecified": "unspecified address",
    "multicast": "multicast address",
    "reserved": "reserved address",
}

REFUSAL_REASONS: Final = frozenset(_DESCRIPTIONS)

_V4: Final = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        # The metadata services come first: they sit inside link_local and cgnat.
        ("169.254.169.254/32", "metadata"),  # AWS, GCP, Azure, OCI, OpenStack, DigitalOcean
        ("169.254.170.2/32", "metadata"),  # AWS ECS task metadata
        ("100.100.100.200/32", "metadata"),  # Alibaba Cloud
        ("0.0.0.0/8", "unspecified"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("169.254.0.0/16", "link_local"),
        ("100.64.0.0/10", "cgnat"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # and 255.255.255.255
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "reserved"),
        ("192.88.99.0/24", "reserved"),
        ("198.18.0.0/15", "reserved"),
        ("198.51.100.0/24", "reserved"),
        ("203.0.113.0/24", "reserved"),
    )
)
_V6: Final = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("fd00:ec2::254/128", "metadata"),  # AWS, over IPv6
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fc00::/7", "private"),
        ("fec0::/10", "private"),  # site-local, deprecated but routable inside a site
        ("fe80::/10", "link_local"),
        ("ff00::/8", "multicast"),
        ("64:ff9b:1::/48", "reserved"),  # local-use NAT64
    )
)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


def address_class(address: str | _IPAddress) -> str | None:
    """The refusal reason of an IP address, or None when it is a public address.

    A string that is not an IP address (after dropping an IPv6 `%zone`) is
    judged "reserved": the guard fails closed.
    """
    if isinstance(address, str):
        try:
            ip: _IPAddress = ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            return "reserved"
    else:
        ip = address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if embedded is not None:
            return address_class(embedded)
        table: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = _V6
    else:
        table = _V4
    for network, reason in table:
        if ip in network:
            return reason
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def describe_reason(reason: str) -> str:
    """The words for a refusal reason: "private address", "loopback address", ..."""
    return _DESCRIPTIONS.get(reason, f"{reason} address")


def origin_key(origin: str | URL) -> OriginKey:
    """(host, port) of an origin or of any absolute http(s) URL, default port filled in.

    `"http://127.0.0.1:80"`, `"http://127.0.0.1"` and `"http://127.0.0.1/feed"`
    give the same key. Raises ValueError for anything that is not an absolute
    http(s) URL.
    """
    url = origin if isinstance(origin, URL) else URL(origin)
    host = url.raw_host
    port = url.port
    if url.scheme not in ("http", "https") or not host or port is None:
        raise ValueError(f"not an absolute http(s) URL: {str(origin)!r}")
    return _normal_host(host), port


def _normal_host(host: str) -> str:
    return host.rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a connection to `host` was refused: `reason` (a metric label) and the address."""

    reason: str
    host: str  # the host as the URL names it
    address: str  # the address refused: `host` itself when it is an IP literal

    @property
    def what(self) -> str:
        """The words for a message: `private address (db.example resolves to 10.0.0.5)`."""
        words = describe_reason(self.reason)
        if self.address == self.host:
            return words
        return f"{words} ({self.host} resolves to {self.address})"


class AddressRefusedError(OSError):
    """Raised by `GuardedResolver` when every address of a host is forbidden.

    An OSError, so that aiohttp reports it the way it reports a failed lookup
    (a `ClientConnectorDNSError` whose cause is this error).
    """

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(f"{refusal.host}: {refusal.what} refused")
        self.refusal = refusal


class AddressGuard:
    """The policy: trusted origins, and whether private networks are allowed anyway."""

    __slots__ = ("_trusted", "allow_private_networks")

    def __init__(
        self, trusted_origins: Iterable[str] = (), *, allow_private_networks: bool = False
    ) -> None:
        self._trusted: frozenset[OriginKey] = frozenset(origin_key(o) for o in trusted_origins)
        self.allow_private_networks = allow_private_networks

    @property
    def trusted(self) -> frozenset[OriginKey]:
        """The trusted (host, port) pairs."""
        return self._trusted

    def trusts(self, host: str, port: int) -> bool:
        """Whether connections to `host`:`port` are exempt from the address policy."""
        if self.allow_private_networks or (host, port) in self._trusted:
            return True
        normal = _normal_host(host)
        return normal != host and (normal, port) in self._trusted

    def check_url(self, url: URL) -> Refusal | None:
        """The refusal of an absolute http(s) URL whose host is a forbidden IP literal.

        A host name passes here; its addresses are judged when it is resolved.
        """
        host = url.raw_host
        port = url.port
        if host is None or port is None or self.trusts(host, port):
            return None
        if ":" not in host and not host.replace(".", "").isdigit():
            return None  # a name, not a literal: the resolver judges its addresses
        literal = url.host or host  # "fe80::1%eth0", not the percent-encoded raw form
        try:
            ip = ipaddress.ip_address(literal.partition("%")[0])
        except ValueError:
            return None  # a legacy numeric form: aiohttp refuses it as an invalid URL
        reason = address_class(ip)
        return None if reason is None else Refusal(reason, literal, literal)

    def filter_resolved(
        self, host: str, port: int, results: list[ResolveResult]
    ) -> list[ResolveResult]:
        """The resolved addresses `host`:`port` may connect to; raises when none is left."""
        if self.trusts(host, port):
            return results
        allowed = [r for r in results if address_class(r["host"]) is None]
        if allowed or not results:
            return allowed
        first = results[0]["host"]
        reason = address_class(first) or "reserved"
        raise AddressRefusedError(Refusal(reason, host, first))


class GuardedResolver(AbstractResolver):
    """A resolver that applies an `AddressGuard` to the answers of another resolver."""

    def __init__(self, guard: AddressGuard, inner: AbstractResolver) -> None:
        self._guard = guard
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        return self._guard.filter_resolved(host, port, results)

    async def close(self) -> None:
        await self._inner.close()
