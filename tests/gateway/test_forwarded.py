"""Forwarding headers: the grammar (X-Forwarded-For, Forwarded per RFC 7239) on golden vectors,
and which hop `ClientLocator` believes, on plain ASGI scopes."""

from __future__ import annotations

import pytest
from starlette.types import Scope

from clearance.net.client import ClientLocator
from clearance.net.forwarded import Hop, forwarded, node_address, x_forwarded


@pytest.mark.parametrize(
    ("node", "address"),
    [
        ("192.0.2.60", "192.0.2.60"),
        (" 192.0.2.60 ", "192.0.2.60"),
        ("192.0.2.60:4711", "192.0.2.60"),
        ("[2001:db8:cafe::17]", "2001:db8:cafe::17"),
        ("[2001:db8:cafe::17]:4711", "2001:db8:cafe::17"),
        ("2001:DB8:CAFE:0::17", "2001:db8:cafe::17"),  # bare, as X-Forwarded-For writes it
        ("unknown", ""),  # RFC 7239 §6.2
        ("_hidden", ""),  # RFC 7239 §6.3, an obfuscated node
        ("[192.0.2.60]", ""),  # brackets are for IPv6 only
        ("[2001:db8::1", ""),
        ("[2001:db8::1]4711", ""),
        ("192.0.2.60:http", ""),
        ("example.com", ""),
        ("", ""),
    ],
)
def test_node_address(node: str, address: str) -> None:
    assert node_address(node) == address


@pytest.mark.parametrize(
    ("header", "hops"),
    [
        # RFC 7239 §4 and §7.1 examples
        ('for="_gazonk"', [Hop("")]),
        ('For="[2001:db8:cafe::17]:4711"', [Hop("2001:db8:cafe::17")]),
        ("for=192.0.2.60;proto=http;by=203.0.113.43", [Hop("192.0.2.60", "http")]),
        ("for=192.0.2.43, for=198.51.100.17", [Hop("192.0.2.43"), Hop("198.51.100.17")]),
        (
            "for=192.0.2.43,for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com",
            [Hop("192.0.2.43"), Hop("198.51.100.17", "http")],
        ),
        ('for="192.0.2.60:80";PROTO=HTTPS', [Hop("192.0.2.60", "https")]),
        ("for=unknown", [Hop("")]),
        ("proto=https", [Hop("", "https")]),  # no `for`: a hop without an address
        ("for=192.0.2.60;proto=gopher", [Hop("192.0.2.60")]),
        ("for=192.0.2.60;", [Hop("192.0.2.60")]),  # an empty pair is allowed
        ("", []),
        (" , ,", []),  # empty list members count for nothing (RFC 9110 §5.6.1)
        ('for="a\\"b"', [Hop("")]),  # a quoted-pair
        # Malformed: the element is a hop without an address and the next comma starts anew,
        # so what a client sends cannot swallow the element its proxy appends.
        ("garbage", [Hop("")]),
        ("for=192.0.2.1;for=192.0.2.2, for=198.51.100.1", [Hop(""), Hop("198.51.100.1")]),
        ('for="unterminated, for=2.180.0.1', [Hop(""), Hop("2.180.0.1")]),
        ('for="x, for="[2a01:5ec0::1]"', [Hop(""), Hop("2a01:5ec0::1")]),
        ('a=";, for="192.0.2.9"', [Hop(""), Hop("192.0.2.9")]),
        ("for=192.0.2.1 junk, for=2.180.0.1", [Hop(""), Hop("2.180.0.1")]),
    ],
)
def test_forwarded(header: str, hops: list[Hop]) -> None:
    assert forwarded(header) == hops


def test_forwarded_stays_linear_on_hostile_input() -> None:
    # Header sizes are bounded by the HTTP parser; the walk must not be quadratic within them.
    for hostile in ['a="' + ",a=x" * 20_000, ',"' * 20_000, 'a="x,";' * 10_000 + "z"]:
        assert len(forwarded(hostile)) <= 20_001


@pytest.mark.parametrize(
    ("xff", "xfp", "hops"),
    [
        ("2.180.0.1", None, [Hop("2.180.0.1")]),
        ("2.180.0.1, 10.0.0.1", "https", [Hop("2.180.0.1", "https"), Hop("10.0.0.1", "https")]),
        ("2.180.0.1,10.0.0.1", "https, http", [Hop("2.180.0.1", "https"), Hop("10.0.0.1", "http")]),
        (
            "2.180.0.1, 10.0.0.1, 10.0.0.2",
            "https, http",
            [Hop("2.180.0.1"), Hop("10.0.0.1"), Hop("10.0.0.2")],
        ),
        ("[2a01:5ec0::1]:443, 192.0.2.1:80", None, [Hop("2a01:5ec0::1"), Hop("192.0.2.1")]),
        ("junk, , 2.180.0.1", None, [Hop(""), Hop(""), Hop("2.180.0.1")]),
        ("", "https", [Hop("", "https")]),
    ],
)
def test_x_forwarded(xff: str, xfp: str | None, hops: list[Hop]) -> None:
    assert x_forwarded(xff, xfp) == hops


def scope(peer: str, *headers: tuple[str, str], kind: str = "http") -> Scope:
    return {
        "type": kind,
        "scheme": "ws" if kind == "websocket" else "http",
        "client": (peer, 50000),
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers],
    }


PROXIES = ClientLocator(["127.0.0.1/32", "10.0.0.0/8", "2001:db8:aaaa::/48"])


@pytest.mark.parametrize(
    ("request_scope", "address", "scheme"),
    [
        (scope("127.0.0.1"), "127.0.0.1", "http"),
        (scope("127.0.0.1", ("X-Forwarded-For", "2.180.0.1")), "2.180.0.1", "http"),
        # the nearest untrusted hop; what the client wrote left of it does not count
        (scope("127.0.0.1", ("X-Forwarded-For", "8.8.8.8, 2.180.0.1")), "2.180.0.1", "http"),
        (scope("127.0.0.1", ("X-Forwarded-For", "2.180.0.1, 10.9.8.7")), "2.180.0.1", "http"),
        (scope("127.0.0.1", ("X-Forwarded-For", "2.180.0.1, 8.8.8.8")), "8.8.8.8", "http"),
        # every line of a repeated header, in order (RFC 9110 §5.3)
        (
            scope("127.0.0.1", ("X-Forwarded-For", "2.180.0.1"), ("X-Forwarded-For", "10.0.0.1")),
            "2.180.0.1",
            "http",
        ),
        (scope("127.0.0.1", ("X-Forwarded-For", "10.0.0.2, 10.0.0.1")), "10.0.0.2", "http"),
        (
            scope("127.0.0.1", ("X-Forwarded-For", "2.180.0.1"), ("X-Forwarded-Proto", "https")),
            "2.180.0.1",
            "https",
        ),
        (scope("127.0.0.1", ("X-Forwarded-Proto", "https")), "127.0.0.1", "https"),
        (scope("127.0.0.1", ("X-Forwarded-Proto", "gopher")), "127.0.0.1", "http"),
        (
            scope("127.0.0.1", ("Forwarded", 'for="[2a01:5ec0::1]:4711";proto=https')),
            "2a01:5ec0::1",
            "https",
        ),
        (
            scope("2001:db8:aaaa::5", ("Forwarded", "for=8.8.8.8, for=2.180.0.1")),
            "2.180.0.1",
            "http",
        ),
        # X-Forwarded-For, which nearly every proxy sets, over Forwarded, which a client may add
        (
            scope("127.0.0.1", ("Forwarded", "for=2.180.0.1"), ("X-Forwarded-For", "8.8.8.8")),
            "8.8.8.8",
            "http",
        ),
        # what cannot be believed where the walk needs it: the peer
        (scope("127.0.0.1", ("X-Forwarded-For", "not-an-address")), "127.0.0.1", "http"),
        (scope("127.0.0.1", ("X-Forwarded-For", "2.180.0.1, junk")), "127.0.0.1", "http"),
        (scope("127.0.0.1", ("X-Forwarded-For", "")), "127.0.0.1", "http"),
        (scope("127.0.0.1", ("Forwarded", "for=unknown")), "127.0.0.1", "http"),
        (scope("127.0.0.1", ("Forwarded", 'for="unterminated')), "127.0.0.1", "http"),
        (scope("127.0.0.1", ("X-Forwarded-For", "2.180.0.1\xff")), "127.0.0.1", "http"),
        # an untrusted peer's headers are never read
        (
            scope("192.0.2.1", ("X-Forwarded-For", "8.8.8.8"), ("X-Forwarded-Proto", "https")),
            "192.0.2.1",
            "http",
        ),
        (scope("192.0.2.1", ("Forwarded", "for=8.8.8.8;proto=https")), "192.0.2.1", "http"),
        (scope("127.0.0.1", ("X-Forwarded-Proto", "https"), kind="websocket"), "127.0.0.1", "wss"),
    ],
)
def test_locator_behind_trusted_proxies(request_scope: Scope, address: str, scheme: str) -> None:
    assert PROXIES.resolve(request_scope) == (address, scheme)


def test_locator_without_trusted_proxies_believes_only_the_peer() -> None:
    direct = ClientLocator([])
    request_scope = scope(
        "127.0.0.1",
        ("X-Forwarded-For", "2.180.0.1"),
        ("Forwarded", "for=2.180.0.1;proto=https"),
        ("X-Forwarded-Proto", "https"),
    )
    assert direct.resolve(request_scope) == ("127.0.0.1", "http")
    assert direct.country(request_scope) == ""
    assert direct.rewrite(request_scope) is request_scope


def test_rewrite_is_what_resolve_says_and_idempotent() -> None:
    request_scope = scope(
        "127.0.0.1", ("X-Forwarded-For", "2.180.0.1, 10.0.0.1"), ("X-Forwarded-Proto", "https")
    )
    rewritten = PROXIES.rewrite(request_scope)
    assert (rewritten["client"][0], rewritten["scheme"]) == ("2.180.0.1", "https")
    assert request_scope["client"] == ("127.0.0.1", 50000)  # the server's own scope is kept
    assert PROXIES.resolve(rewritten) == ("2.180.0.1", "https")
    assert PROXIES.country(rewritten) == "IR"
    plain = scope("127.0.0.1")
    assert PROXIES.rewrite(plain) is plain
