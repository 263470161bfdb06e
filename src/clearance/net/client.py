"""Who the client is: the socket peer, unless that peer is a trusted proxy (RFC 7239)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

from clearance.net import forwarded
from clearance.policy import geo


class ClientLocator:
    """Where a request came from: the socket peer, unless the peer is a trusted proxy.

    From a peer inside `trusted_proxies` the hops its proxies recorded are walked from the
    nearest outwards, skipping trusted proxies; the first address not trusted is the client
    (nginx `real_ip_recursive`, Envoy `xff_num_trusted_hops`). `X-Forwarded-For` is read when
    present, else `Forwarded` (RFC 7239); a client may send either, so a trusted proxy must set
    or strip `X-Forwarded-For` (nearly all do). Where the walk meets a hop that is no address,
    the headers cannot be believed and the peer is the client. uvicorn's own proxy handling
    is off (net/serving.py): nothing else rewrites `scope["client"]` or `scope["scheme"]`.
    """

    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted = tuple(ipaddress.ip_network(t, strict=False) for t in trusted)

    def _is_trusted(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted)

    def resolve(self, scope: Scope) -> tuple[str, str]:
        """The client's address and the scheme it used ("http", "https"; "ws", "wss")."""
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        scheme = str(scope.get("scheme", "http"))
        if not (self.trusted and self._is_trusted(peer)):
            return peer, scheme
        hop = self._client_hop(scope.get("headers", ()))
        if hop is None:
            return peer, scheme
        if hop.proto and scope["type"] == "websocket":
            scheme = hop.proto.replace("http", "ws")
        elif hop.proto:
            scheme = hop.proto
        return hop.address or peer, scheme

    def _client_hop(self, raw: Iterable[tuple[bytes, bytes]]) -> forwarded.Hop | None:
        """The client's hop (an empty address: the peer itself), or None to believe nothing."""
        lines: dict[bytes, list[str]] = {}
        for name, value in raw:
            if name in _FORWARDING:
                lines.setdefault(name, []).append(value.decode("latin-1"))
        protos = lines.get(b"x-forwarded-proto")
        if b"x-forwarded-for" in lines:
            proto = ", ".join(protos) if protos is not None else None
            hops = forwarded.x_forwarded(", ".join(lines[b"x-forwarded-for"]), proto)
        elif b"forwarded" in lines:
            hops = forwarded.forwarded(", ".join(lines[b"forwarded"]))
        else:  # the proxy named no client, perhaps the scheme it was reached by
            proto = forwarded.scheme(protos[0]) if protos is not None and len(protos) == 1 else ""
            return forwarded.Hop("", proto) if proto else None
        for hop in reversed(hops):
            if not hop.address:
                return None
            if not self._is_trusted(hop.address):
                return hop
        return hops[0] if hops else None  # every hop a trusted proxy: the farthest one

    # `headers` is not needed: every line of a repeated header counts, so they come from the scope.
    def address(self, scope: Scope, headers: dict[bytes, bytes] | None = None) -> str:
        return self.resolve(scope)[0]

    def country(self, scope: Scope, headers: dict[bytes, bytes] | None = None) -> str:
        return country_of(self.address(scope))

    def rewrite(self, scope: Scope) -> Scope:
        """`scope` with the resolved client and scheme, for apps that read them from the scope
        (Starlette's `request.client` and `request.url`)."""
        if not self.trusted or scope["type"] not in ("http", "websocket"):
            return scope
        address, scheme = self.resolve(scope)
        client = scope.get("client")
        if client and client[0] == address and scope.get("scheme") == scheme:
            return scope
        return {**scope, "client": (address, 0), "scheme": scheme}


_FORWARDING = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"forwarded"})


def client_subject(address: str) -> str:
    """What a client is counted as: its IPv4 address, or its IPv6 /64.

    One subscriber usually holds a whole IPv6 /64 (RFC 6177 §2, RFC 7421), so counting single
    IPv6 addresses would give one client 2**64 budgets.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address (a test client, a unix socket): counted as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@functools.lru_cache(maxsize=1 << 16)
def country_of(address: str) -> str:
    """The ISO 3166 country of an address, or "" for none (a private or malformed address).
    Cached: a client sends many requests, and parsing and looking up costs ~3 µs each."""
    try:
        return geo.country_of(str(ipaddress.ip_address(address)))
    except ValueError:
        return ""
