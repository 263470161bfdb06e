"""The hops a request passed through, as proxies record them: `X-Forwarded-For` with
`X-Forwarded-Proto` (de facto), or `Forwarded` (RFC 7239). Pure parsing; which hops to believe
is `ClientLocator`'s business (net/client.py).

Everything left of the nearest trusted proxy's entry is the client's to write, so nothing here
raises: a node that is not an address becomes a hop without one, and a malformed `Forwarded`
element is skipped up to the next comma, so garbage a client puts in front cannot swallow the
element its proxy appends behind it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class Hop:
    address: str  # a normalised IP address; "" for "unknown", an obfuscated name or garbage
    proto: str = ""  # "http" or "https" when the proxy said which; "" otherwise


def node_address(node: str) -> str:
    """The IP address of a node: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`,
    `[2001:db8::1]:4711`, or a bare `2001:db8::1` (X-Forwarded-For); "" for anything else
    (RFC 7239 §6: `unknown`, obfuscated `_names`)."""
    node = node.strip()
    if node.startswith("["):
        host, bracket, port = node[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and port[1:].isdigit())):
            return ""
        return _ip(host, version=6)
    if node.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has more colons
        host, _, port = node.partition(":")
        return _ip(host, version=4) if port.isdigit() else ""
    return _ip(node)


def x_forwarded(for_value: str, proto_value: str | None) -> list[Hop]:
    """The hops of `X-Forwarded-For` (its lines joined by ", "), nearest last.

    `X-Forwarded-Proto` names what each hop's proxy was reached by, aligned from the right with
    `X-Forwarded-For`; a single value (what most proxies send) stands for every hop.
    """
    addresses = [node_address(item) for item in for_value.split(",")]
    protos = [scheme(p) for p in proto_value.split(",")] if proto_value is not None else []
    if len(protos) == 1:
        protos *= len(addresses)
    if len(protos) != len(addresses):
        protos = [""] * len(addresses)
    return [Hop(a, p) for a, p in zip(addresses, protos, strict=True)]


# RFC 7239 §4: forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] ),
# forwarded-pair = token "=" value, value = token / quoted-string (RFC 9110 §5.6).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PAIR = re.compile(rf'[ \t]*({_TOKEN})=({_TOKEN}|"(?:[^"\\]|\\.)*")[ \t]*')
_BLANK = re.compile(r"[ \t]*")
_ESCAPE = re.compile(r"\\(.)")


def forwarded(value: str) -> list[Hop]:
    """The hops of `Forwarded` (its lines joined by ", "), nearest last: each element's `for`
    and `proto` (RFC 7239 §5.2, §5.4). An element without `for` is a hop without an address."""
    hops: list[Hop] = []
    pos = 0
    while pos <= len(value):
        params, end = _element(value, pos)
        if params is None:  # malformed: the next element starts after the next comma
            comma = value.find(",", pos)
            end = len(value) if comma < 0 else comma
            hops.append(Hop(""))
        elif params:  # an empty list member is no hop (RFC 9110 §5.6.1)
            hops.append(Hop(node_address(params.get("for", "")), scheme(params.get("proto", ""))))
        pos = end + 1
    return hops


def _element(value: str, pos: int) -> tuple[dict[str, str] | None, int]:
    """The parameters of the element at `pos` and where it ends (its comma, or the end); None
    for the parameters when the element is malformed or names a parameter twice (RFC 7239 §4)."""
    params: dict[str, str] = {}
    while True:
        match = _PAIR.match(value, pos)
        if match is None:
            blank = _BLANK.match(value, pos)
            at = blank.end() if blank else pos
            if at == len(value) or value[at] == ",":
                return params, at
            if value[at] != ";":
                return None, pos
            pos = at + 1  # an empty pair
            continue
        name, raw = match.group(1).lower(), match.group(2)
        if name in params:
            return None, pos
        params[name] = _ESCAPE.sub(r"\1", raw[1:-1]) if raw.startswith('"') else raw
        pos = match.end()
        if pos == len(value) or value[pos] == ",":
            return params, pos
        if value[pos] != ";":
            return None, pos
        pos += 1


def scheme(text: str) -> str:
    """ "http" or "https" from a proxy's word for it; "" for anything else."""
    word = text.strip().lower()
    return word if word in SCHEMES else ""


def _ip(text: str, version: int | None = None) -> str:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if version is not None and addr.version != version:
        return ""
    return str(addr)
