"""Client IP -> country, offline, from the database geoip2fast ships inside its package.

IP location is evidence, not the verdict: it is easy to route around, so it only ever adds denials
(embargoed locations); verified nationality and residence decide everything else.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path

import geoip2fast
from geoip2fast import GeoIP2Fast

from clearance.errors import InvalidInput


@lru_cache(maxsize=1)
def _db() -> GeoIP2Fast:
    # The IPv4+IPv6 country file shipped in the package; nothing is downloaded.
    data = Path(geoip2fast.__file__).parent / "geoip2fast-ipv6.dat.gz"
    return GeoIP2Fast(geoip2fast_data_file=str(data), verbose=False)


def parse_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not an IP address") from exc


@lru_cache(maxsize=65536)
def country_of(ip: str) -> str:
    """ISO 3166-1 alpha-2 country of a public address; "" for private, reserved or unknown."""
    addr = ipaddress.ip_address(ip)
    if not addr.is_global:
        return ""
    code = str(_db().lookup(str(addr)).country_code or "")
    return code if len(code) == 2 and code.isalpha() else ""
