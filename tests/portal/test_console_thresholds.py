"""A threshold change previewed in the console, through the running gateway on SQLite and
PostgreSQL: a viewer sees the configured thresholds and, for a proposed lower compute threshold,
the model it would reclassify (nothing applied, as `clearance models thresholds`); a bad figure
or an unknown threshold to drop names the field; no console role is 403.
"""

from __future__ import annotations

from clearance.portal import operators
from tests.portal.conftest import Outbox, Running
from tests.portal.review_cases import Instance
from tests.portal.test_console import NOBODY, VIEWER, db, signed_in

__all__ = ["db"]
PAGE = "/console/thresholds"


def test_a_viewer_previews_a_threshold_change(
    gateway: Running, db: Instance, outbox: Outbox
) -> None:
    nobody, _ = signed_in(gateway, db, outbox, NOBODY)
    browser, _ = signed_in(gateway, db, outbox, VIEWER, operators.VIEWER)
    try:
        assert nobody.get(PAGE).status_code == 403
        shown = browser.get(PAGE)
        assert shown.status_code == 200 and 'id="current"' in shown.text
        assert 'id="changes"' not in shown.text
        # fable-4 was trained with 2.1e25 FLOP: above a 1e25 threshold, it would be controlled
        lower = browser.get(PAGE, params={"compute": "1e25"}).text
        assert 'data-model="fable-4" data-to="controlled"' in lower
        assert 'data-model="mythos-5"' not in lower  # an explicit decision never moves
        for params, field in (
            ({"compute": "lots"}, "compute"),
            ({"compute": "-1"}, "compute"),
            ({"evals": "cyber-uplift"}, "evals"),
            ({"drop": "not-configured"}, "drop"),
        ):
            answer = browser.get(PAGE, params=params)
            assert answer.status_code == 400 and f'data-field="{field}"' in answer.text
    finally:
        nobody.close()
        browser.close()
