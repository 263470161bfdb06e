"""A model's fallbacks, upstream and prices changed, and a model retired, from the console, through
the running gateway on SQLite and PostgreSQL.

A viewer sees no form and every POST is 403. An operator changes mythos-5's fallbacks and
prices with a reason (`model.update`, as `clearance models update` writes it, with the reason)
and retires a model (`model.retire`: the persona is refused it at once); each form carries the
model's version, so a change made on a page rendered before another change is 409; a bad price,
an unknown fallback or upstream, a missing reason name their field.
"""

from __future__ import annotations

from clearance.portal import operators
from tests.portal.conftest import Outbox, Running
from tests.portal.review_cases import Instance
from tests.portal.test_console import (
    _VERSION,
    OPERATOR,
    VIEWER,
    change,
    db,
    done,
    entry,
    refused_model,
    served,
    signed_in,
)

__all__ = ["db"]
PAGE = "/console/models/mythos-5"


def test_a_viewer_sees_no_form_and_cannot_update_or_retire(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    browser, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        shown = browser.get(PAGE)
        assert shown.status_code == 200 and 'id="prices"' in shown.text
        assert 'id="update-form"' not in shown.text and 'id="retire-form"' not in shown.text
        version = _VERSION.search(shown.text)
        assert version
        base = {"csrf": browser.csrf(PAGE), "version": version.group(1), "reason": "viewer"}
        update = {
            **base,
            "fallbacks": "fable-4",
            "upstream": "demo",
            "upstream_model": "mythos-5",
        }
        assert browser.post(f"{PAGE}/update", data=update).status_code == 403
        assert browser.post(f"{PAGE}/retire", data=base).status_code == 403
    finally:
        browser.close()
    assert db.entries(action="model.update") == db.entries(action="model.retire") == []


def test_an_operator_changes_fallbacks_and_prices_and_a_stale_edit_is_409(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    try:
        stale = _VERSION.search(browser.get(PAGE).text)
        assert stale
        fields = {
            "fallbacks": "fable-4",
            "upstream": "demo",
            "upstream_model": "mythos-5",
            "input_price": "2.50",
            "output_price": "10",
            "reason": "fable-5 is being retired next week",
        }
        answer, shown = change(browser, PAGE, f"{PAGE}/update", **fields)
        assert 'id="update-form"' in shown and 'value="fable-5"' in shown
        index, action = done(browser, answer)
        updated = entry(db, index)
        assert (action, updated["action"], updated["actor"], updated["target"]) == (
            "update",
            "model.update",
            actor,
            "mythos-5",
        )
        assert updated["details"] == {
            "changes": {
                "fallbacks": {"from": ["fable-5"], "to": ["fable-4"]},
                "input_price": {"from": None, "to": "2.5"},
                "output_price": {"from": None, "to": "10"},
            },
            "reason": "fable-5 is being retired next week",
        }
        page = browser.get(PAGE).text
        assert '<dd id="fallbacks">fable-4</dd>' in page and "2.5 in, 10 out" in page

        late = browser.post(
            f"{PAGE}/update",
            data={**fields, "csrf": browser.csrf(PAGE), "version": stale.group(1)},
        )
        assert late.status_code == 409 and "changed since you opened it" in late.text
        assert len(db.entries(action="model.update")) == 1
    finally:
        browser.close()


def test_update_forms_are_checked_naming_the_field(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    browser, _ = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    good = {"fallbacks": "fable-5", "upstream": "demo", "upstream_model": "mythos-5"}
    try:
        for fields, field in (
            ({**good, "reason": " "}, "reason"),
            ({**good, "input_price": "cheap", "output_price": "1"}, "input_price"),
            ({**good, "input_price": "1", "output_price": "-1"}, "output_price"),
            ({**good, "input_price": "1"}, "output_price"),
            ({**good, "fallbacks": "fable-4, gpt-9"}, "fallbacks"),
            ({**good, "upstream": "elsewhere"}, "upstream"),
            ({**good, "upstream_model": ""}, "upstream_model"),
        ):
            answer, _ = change(browser, PAGE, f"{PAGE}/update", **{"reason": "x", **fields})
            assert answer.status_code == 400, (field, answer.text)
            assert f'data-field="{field}"' in answer.text
        nothing, _ = change(browser, PAGE, f"{PAGE}/update", reason="x", **good)
        assert nothing.status_code == 400 and "nothing to change" in nothing.text
        # fable-4 -> mythos-5 -> fable-5 -> fable-4: refused by the catalog, as in the CLI
        cycle, _ = change(
            browser,
            "/console/models/fable-4",
            "/console/models/fable-4/update",
            **{**good, "fallbacks": "mythos-5", "upstream_model": "fable-4"},
            reason="x",
        )
        assert cycle.status_code == 409 and "cycle" in cycle.text
        no_version = browser.post(
            f"{PAGE}/retire", data={"csrf": browser.csrf(PAGE), "reason": "x"}
        )
        assert no_version.status_code == 400 and 'data-field="version"' in no_version.text
    finally:
        browser.close()
    assert db.entries(action="model.update") == db.entries(action="model.retire") == []


def test_an_operator_retires_a_model_with_a_reason(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    strict = gateway.strict_key("alice")
    assert served(gateway, strict, "mythos-5") == "mythos-5"
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    try:
        no_reason, _ = change(browser, PAGE, f"{PAGE}/retire", reason="")
        assert no_reason.status_code == 400 and 'data-field="reason"' in no_reason.text
        stale = _VERSION.search(browser.get(PAGE).text)
        assert stale
        answer, _ = change(browser, PAGE, f"{PAGE}/retire", reason="superseded by mythos-6")
        index, action = done(browser, answer)
        retired = entry(db, index)
        assert (action, retired["action"], retired["actor"]) == ("retire", "model.retire", actor)
        assert retired["details"] == {"reason": "superseded by mythos-6", "unlinked_from": []}
        page = browser.get(PAGE).text
        assert 'data-state="retired"' in page and 'id="retire-form"' not in page
        again = browser.post(
            f"{PAGE}/retire",
            data={"csrf": browser.csrf(PAGE), "version": stale.group(1), "reason": "again"},
        )
        assert again.status_code == 409
        gateway.poll()
        refused = refused_model(gateway, strict, "mythos-5")
        assert refused.status_code == 451 and "model-retired" in refused.message
    finally:
        browser.close()


def test_an_operator_records_classification_evidence(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    viewer, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    browser, actor = signed_in(gateway, db, outbox, OPERATOR, operators.OPERATOR)
    page = "/console/models/fable-4"
    try:
        shown = viewer.get(page).text
        assert 'id="evidence-form"' not in shown
        version = _VERSION.search(shown)
        assert version
        sneaky = viewer.post(
            f"{page}/evidence",
            data={
                "csrf": viewer.csrf(page),
                "version": version.group(1),
                "training_compute": "3e26",
                "reason": "viewer tries",
            },
        )
        assert sneaky.status_code == 403

        for fields, field in (
            ({"training_compute": "3e26", "reason": " "}, "reason"),
            ({"evaluations": "cyber-uplift", "reason": "x"}, "evaluations"),
            ({"training_compute": "lots", "reason": "x"}, "training_compute"),
            ({"parameters": "-1", "tokens": "1e13", "reason": "x"}, "parameters"),
        ):
            answer, _ = change(browser, page, f"{page}/evidence", **fields)
            assert answer.status_code == 400 and f'data-field="{field}"' in answer.text
        nothing, _ = change(browser, page, f"{page}/evidence", reason="x")
        assert nothing.status_code == 400 and "no evidence" in nothing.text

        stale = _VERSION.search(browser.get(page).text)
        assert stale
        answer, _ = change(
            browser,
            page,
            f"{page}/evidence",
            training_compute="3e26",
            source="https://example.org/model-card",
            reason="the model card reports 3e26 FLOP",
        )
        index, action = done(browser, answer)
        recorded = entry(db, index)
        assert (action, recorded["action"], recorded["actor"]) == (
            "evidence",
            "model.evidence",
            actor,
        )
        assert recorded["details"]["training_compute"] == 3e26
        assert recorded["details"]["reason"] == "the model card reports 3e26 FLOP"
        assert recorded["details"]["classification_rule"].startswith("training-compute>")
        assert 'id="classification">controlled' in browser.get(page).text
        late = browser.post(
            f"{page}/evidence",
            data={
                "csrf": browser.csrf(page),
                "version": stale.group(1),
                "evaluations": "cyber-uplift=0.1",
                "reason": "an old tab",
            },
        )
        assert late.status_code == 409
        assert len(db.entries(action="model.evidence")) == 1
    finally:
        viewer.close()
        browser.close()
