"""One organisation's page in the console, through the running gateway on SQLite and PostgreSQL.

An operator changes its KYB details with a reason (`org.update`, as `clearance orgs update`
writes it, with the reason); a page rendered before another change is 409, a bad country code
or a missing reason names the field, a viewer's POST is 403. It declares and removes an owner
(`org.owner.add|remove`) and grants and takes back an admin (`org.admin.grant|revoke`), each
with a reason, as `clearance orgs owners|admins` do.

Without a console role it is 403. A viewer opens Acme Corp from the list: its KYB details, its
screening (name and ownership), its declared owners, its admins, its members linking their
pages, links to its keys and licences; opening it is an `org.view` entry, as in the operator
API. An organisation flagged by its screening links to its hits on the screening page, and says
so when none is stored behind the status. An unknown id is 404, a bad cursor names the field.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from httpx import Response

from clearance.portal import operators
from clearance.principals import directory, org_admins, owners
from clearance.store.tables import orgs
from tests.portal.conftest import Browser, Outbox, Running
from tests.portal.review_cases import Instance
from tests.portal.test_console import (
    _VERSION,
    NOBODY,
    OPERATOR,
    VIEWER,
    change,
    db,
    done,
    entry,
    signed_in,
)

__all__ = ["db"]
ACME = "Acme Corp"


def test_a_viewer_opens_an_organisation_and_no_role_is_403(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    with db.engine.begin() as conn:
        directory.update_org(conn, ACME, kyb={"legal_name": "Acme Corporation Inc."})
        owners.add_owner(
            conn, ACME, kind="person", name="Wile E. Coyote", percent=30.0, country_code="US",
            actor="cli",
        )  # fmt: skip
        org_admins.grant(conn, ACME, "erik@demo.test", actor="cli")
        conn.execute(
            sa.update(orgs).where(orgs.c.name == ACME).values(screening_status="potential_match")
        )
    nobody, _ = signed_in(gateway, db, outbox, NOBODY)
    browser, actor = signed_in(gateway, db, outbox, VIEWER, "viewer")
    try:
        listed = browser.get("/console/orgs")
        found = re.search(r'<a href="/console/orgs/(\d+)" class="org">Acme Corp</a>', listed.text)
        assert found, listed.text
        page = f"/console/orgs/{found.group(1)}"
        assert nobody.get(page).status_code == 403

        shown = browser.get(page)
        assert shown.status_code == 200
        text = shown.text
        assert 'data-kyb="legal_name">Acme Corporation Inc.<' in text
        assert 'data-kyb="registry">not declared<' in text
        assert 'id="name-screening"' in text and "potential_match" in text
        # Flagged before hits were kept: none stored, and it says so; its hits are a link away.
        assert 'id="org-hits-missing"' in text and 'id="org-hits"' not in text
        assert f'href="/console/screening?org={found.group(1)}" id="org-hits-link"' in text
        assert re.search(r'<tr data-owner="\d+"><td>Wile E. Coyote</td><td>person</td>', text)
        assert 'id="admins"' in text and "erik@demo.test" in text
        members = re.findall(r'<tr data-subject="([^"]+)"><td><a href="/console/people/\1">', text)
        assert len(members) == 1  # erik, its one member
        assert 'href="/console/keys?org=Acme%20Corp"' in text
        assert 'href="/console/licences?org=Acme%20Corp"' in text
        assert 'method="post" action="/console/orgs' not in text  # read only
        viewed = db.entries(action="org.view")
        assert [(e["actor"], e["target"]) for e in viewed] == [(actor, f"org:{found.group(1)}")]

        assert browser.get("/console/orgs/999999").status_code == 404
        assert browser.get("/console/orgs/99999999999").status_code == 404
        bad = browser.get(page, params={"after": "x"})
        assert bad.status_code == 400 and 'data-field="after"' in bad.text
    finally:
        nobody.close()
        browser.close()


def test_a_clear_organisation_shows_no_hit_note(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    browser, _ = signed_in(gateway, db, outbox, VIEWER, "viewer")
    try:
        with db.engine.connect() as conn:
            org_id = directory.get_org(conn, ACME).id
        text = browser.get(f"/console/orgs/{org_id}").text
        assert 'data-screening="clear" data-ownership="clear"' in text
        assert 'id="org-hits-missing"' not in text and 'id="no-owners"' in text
    finally:
        browser.close()


def test_an_operator_changes_an_organisations_details(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    with db.engine.connect() as conn:
        org_id = directory.get_org(conn, ACME).id
    page = f"/console/orgs/{org_id}"
    viewer, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    shown = {"name": ACME, "country": "US"}
    try:
        version = _VERSION.search(viewer.get(page).text)
        assert version
        sneaky = viewer.post(
            f"{page}/update",
            data={"csrf": viewer.csrf(page), "version": version.group(1), **shown, "reason": "v"},
        )
        assert sneaky.status_code == 403
        for fields, field in (
            ({"reason": " "}, "reason"),
            ({"headquarters_country": "Sweden", "reason": "x"}, "headquarters_country"),
            ({"name": "", "reason": "x"}, "name"),
        ):
            answer, _ = change(browser, page, f"{page}/update", **{**shown, **fields})
            assert answer.status_code == 400 and f'data-field="{field}"' in answer.text
        nothing, _ = change(browser, page, f"{page}/update", **shown, reason="x")
        assert nothing.status_code == 400 and "nothing to change" in nothing.text

        answer, _ = change(
            browser,
            page,
            f"{page}/update",
            **shown,
            legal_name="Acme Corporation Inc.",
            headquarters_country="se",
            reason="KYB review 2026-12",
        )
        index, action = done(browser, answer)
        updated = entry(db, index)
        assert (action, updated["action"], updated["actor"], updated["target"]) == (
            "update",
            "org.update",
            actor,
            f"org:{org_id}",
        )
        assert updated["details"] == {
            "legal_name": "Acme Corporation Inc.",
            "headquarters_country": "SE",
            "reason": "KYB review 2026-12",
        }
        assert 'data-kyb="headquarters_country">SE<' in browser.get(page).text
        late = browser.post(
            f"{page}/update",
            data={
                "csrf": browser.csrf(page),
                "version": version.group(1),
                **shown,
                "registry": "Delaware",
                "reason": "an old tab",
            },
        )
        assert late.status_code == 409 and len(db.entries(action="org.update")) == 1
    finally:
        viewer.close()
        browser.close()


def test_an_operator_declares_owners_and_grants_admins(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    with db.engine.connect() as conn:
        org_id = directory.get_org(conn, ACME).id
    page = f"/console/orgs/{org_id}"
    viewer, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)

    def post(who: Browser, path: str, **fields: str) -> Response:
        return who.post(f"{page}/{path}", data={"csrf": who.csrf(page), **fields})

    owner = {"kind": "person", "name": "Wile E. Coyote", "percent": "30", "country": "us"}
    try:
        assert post(viewer, "owners/add", **owner, reason="v").status_code == 403
        assert post(viewer, "admins/grant", email="erik@demo.test", reason="v").status_code == 403
        for fields, field in (
            ({**owner, "reason": ""}, "reason"),
            ({**owner, "kind": "trust", "reason": "x"}, "kind"),
            ({**owner, "percent": "130", "reason": "x"}, "percent"),
            ({**owner, "percent": "lots", "reason": "x"}, "percent"),
            ({**owner, "country": "USA!", "reason": "x"}, "country"),
        ):
            answer = post(browser, "owners/add", **fields)
            assert answer.status_code == 400 and f'data-field="{field}"' in answer.text

        index, action = done(browser, post(browser, "owners/add", **owner, reason="KYB file"))
        added = entry(db, index)
        assert (action, added["action"], added["actor"]) == ("add", "org.owner.add", actor)
        assert added["details"] == {
            "org": ACME,
            "kind": "person",
            "percent": 30.0,
            "country": "US",
            "reason": "KYB file",
        }
        shown = re.search(r'<tr data-owner="(\d+)"><td>Wile E. Coyote</td>', browser.get(page).text)
        assert shown
        too_much = post(browser, "owners/add", **{**owner, "percent": "80"}, reason="x")
        assert too_much.status_code in (400, 409)  # over 100 %: the directory refuses it
        removal = f"owners/{shown.group(1)}/remove"
        index, action = done(browser, post(browser, removal, reason="sold its stake"))
        removed = entry(db, index)
        assert (action, removed["action"]) == ("remove", "org.owner.remove")
        assert removed["details"]["reason"] == "sold its stake"
        assert post(browser, removal, reason="again").status_code == 404

        index, action = done(
            browser, post(browser, "admins/grant", email="erik@demo.test", reason="KYB contact")
        )
        granted = entry(db, index)
        assert (action, granted["action"], granted["target"]) == (
            "grant",
            "org.admin.grant",
            f"org:{ACME}",
        )
        assert granted["subject"] and "@" not in granted["subject"]
        assert 'id="admins"' in browser.get(page).text
        outsider = post(browser, "admins/grant", email="alice@demo.test", reason="x")
        assert outsider.status_code == 400 and "not a member" in outsider.text
        index, action = done(
            browser, post(browser, "admins/revoke", email="erik@demo.test", reason="left")
        )
        assert (action, entry(db, index)["action"]) == ("revoke", "org.admin.revoke")
    finally:
        viewer.close()
        browser.close()
