"""The audit API under hostile paths and parameters: a 4xx in the API's error shape, never a
500 (each of these used to be one: `int("²")`, or an index SQLite cannot bind)."""

from __future__ import annotations

import httpx

from tests.security.conftest import Running

BAD_REQUESTS = [
    ("/audit/entries/%C2%B2", 400),  # "²": str.isdigit() is true, int() refuses it
    ("/audit/entries/%D9%A1%D9%A2", 400),  # Arabic-Indic digits
    ("/audit/entries/99999999999999999999", 400),  # over a signed 64-bit integer
    ("/audit/entries/9223372036854775807", 404),
    ("/audit/proof/inclusion?index=%C2%B2&size=1", 400),
    ("/audit/proof/inclusion?index=0&size=18446744073709551616", 400),
    ("/audit/proof/consistency?first=1&second=99999999999999999999", 400),
    ("/audit/tile/0/x999/x999/x999/x999/x999/x999/999", 404),  # a tile index SQLite can't bind
    ("/audit/tile/0/x036/x028/x797/x018/x963/967", 404),  # the largest possible, not there yet
    ("/audit/tile/entries/x036/x028/x797/x018/x963/967.p/255", 404),
    ("/audit/tile/0/" + "x999/" * 2000 + "999", 404),  # over int()'s digit limit
    ("/audit/no-such-route", 404),
]


def test_hostile_audit_requests_get_a_4xx_in_the_audit_error_shape(gateway: Running) -> None:
    wrong = {}
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        for path, status in BAD_REQUESTS:
            response = http.get(path)
            shaped = response.headers["content-type"] == "application/json" and set(
                response.json()["error"]
            ) == {"code", "message"}
            if response.status_code != status or not shaped:
                wrong[path[:80]] = f"{response.status_code} {response.text[:120]}"
        method = http.post("/audit/checkpoint")
    assert wrong == {}
    assert method.status_code == 405 and "GET" in method.headers["allow"]
    assert method.json()["error"]["code"] == "method_not_allowed"
