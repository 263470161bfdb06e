"""Upstreams in the console, through the running gateway on SQLite and PostgreSQL.

A viewer sees each upstream (kind, base URL, the variable its key is read from, the models using
it) and no form; every POST is 403. An operator changes one with a reason (`upstream.update`, as
`clearance upstreams update` writes it, with the reason) and removes an unused one
(`upstream.remove`); one in use is refused (409), as is a change on a page rendered before
another change. A bad kind, base URL, variable name or a missing reason name their field.
"""

from __future__ import annotations

import re

from clearance.catalog import service as catalog
from clearance.catalog.models import UpstreamKind
from clearance.portal import operators
from tests.portal.conftest import Browser, Outbox, Running
from tests.portal.review_cases import Instance
from tests.portal.test_console import OPERATOR, VIEWER, db, done, entry, served, signed_in

__all__ = ["db"]
PAGE = "/console/upstreams"


def version(browser: Browser, name: str) -> str:
    found = re.search(
        rf'data-upstream="{name}" data-version="([0-9a-f]{{20}})"', browser.get(PAGE).text
    )
    assert found
    return found.group(1)


def test_a_viewer_sees_upstreams_and_cannot_change_them(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    browser, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        shown = browser.get(PAGE)
        assert shown.status_code == 200 and 'data-upstream="demo"' in shown.text
        assert 'href="/console/models/mythos-5">mythos-5</a>' in shown.text
        assert 'id="read-only"' in shown.text and "/update" not in shown.text
        data = {
            "csrf": browser.csrf(PAGE),
            "version": version(browser, "demo"),
            "kind": "openai",
            "base_url": "https://api.example.org/v1",
            "reason": "viewer tries",
        }
        assert browser.post(f"{PAGE}/demo/update", data=data).status_code == 403
        assert browser.post(f"{PAGE}/demo/remove", data=data).status_code == 403
    finally:
        browser.close()
    assert db.entries(action="upstream.update") == db.entries(action="upstream.remove") == []


def test_an_operator_changes_and_removes_an_upstream(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    with db.engine.begin() as conn:
        catalog.add_upstream(conn, "spare", UpstreamKind.OPENAI, "https://spare.example/v1", None)
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)

    def post(name: str, verb: str, **fields: str) -> tuple[int, str]:
        data = {"csrf": browser.csrf(PAGE), "version": version(browser, name), **fields}
        answer = browser.post(f"{PAGE}/{name}/{verb}", data=data)
        return answer.status_code, answer.text

    good = {"kind": "anthropic", "base_url": "https://spare.example/v2", "api_key_env": "SPARE_KEY"}
    try:
        for fields, field in (
            ({**good, "reason": ""}, "reason"),
            ({**good, "kind": "gemini", "reason": "x"}, "kind"),
            ({**good, "base_url": "ftp://spare.example", "reason": "x"}, "base_url"),
            ({**good, "api_key_env": "1 BAD", "reason": "x"}, "api_key_env"),
        ):
            status, page = post("spare", "update", **fields)
            assert status == 400 and f'data-field="{field}"' in page, (field, page)

        stale = version(browser, "spare")
        answer = browser.post(
            f"{PAGE}/spare/update",
            data={"csrf": browser.csrf(PAGE), "version": stale, **good, "reason": "moved to v2"},
        )
        index, action = done(browser, answer)
        changed = entry(db, index)
        assert (action, changed["action"], changed["actor"], changed["target"]) == (
            "update",
            "upstream.update",
            actor,
            "spare",
        )
        assert changed["details"] == {
            "changes": {
                "kind": {"from": "openai", "to": "anthropic"},
                "base_url": {"from": "https://spare.example/v1", "to": "https://spare.example/v2"},
                "api_key_env": {"from": None, "to": "SPARE_KEY"},
            },
            "reason": "moved to v2",
        }
        late = browser.post(
            f"{PAGE}/spare/remove",
            data={"csrf": browser.csrf(PAGE), "version": stale, "reason": "an old tab"},
        )
        assert late.status_code == 409 and "changed since you opened it" in late.text

        status, page = post("demo", "remove", reason="tidy up")
        assert status == 409 and "mythos-5" in page  # in use: refused by the catalog
        index, action = done(
            browser,
            browser.post(
                f"{PAGE}/spare/remove",
                data={
                    "csrf": browser.csrf(PAGE),
                    "version": version(browser, "spare"),
                    "reason": "the spare contract ended",
                },
            ),
        )
        removed = entry(db, index)
        assert (action, removed["action"], removed["target"]) == (
            "remove",
            "upstream.remove",
            "spare",
        )
        assert removed["details"]["reason"] == "the spare contract ended"
        assert 'data-upstream="spare"' not in browser.get(PAGE).text
        assert served(gateway, gateway.key("alice"), "fable-4") == "fable-4"
    finally:
        browser.close()
