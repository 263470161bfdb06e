"""Operator roles from the CLI (`clearance users operator ...`), audited, on SQLite and PostgreSQL.

In process through Typer's runner against a real instance directory and database; the pages the
role opens are tested in test_review.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clearance.cli.app import app
from clearance.config import Settings
from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.portal import operators
from clearance.principals.service import get_user
from tests.portal.review_cases import Instance

EMAIL = "officer@example.org"


@pytest.fixture
def cli(instance: tuple[Settings, Path], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CLEARANCE_CONFIG", str(instance[1]))
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", EMAIL, "--name", "Olga Officer"])
    assert added.exit_code == 0, added.output
    return runner


@pytest.fixture
def db(instance: tuple[Settings, Path], cli: CliRunner) -> Iterator[Instance]:
    inst = Instance(instance[0])
    yield inst
    inst.close()


def run(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, ["users", "operator", *args])
    assert result.exit_code == 0, f"{args}: {result.output} {result.exception!r}"
    return result.output


def test_grant_list_revoke_are_audited_under_the_accounts_pseudonym(
    cli: CliRunner, db: Instance
) -> None:
    assert "granted" in run(cli, "grant", EMAIL, "--role", "reviewer")
    assert "already held" in run(cli, "grant", EMAIL, "--role", "reviewer")
    (listed,) = json.loads(run(cli, "list", "--json"))
    assert (listed["email"], listed["roles"], listed["granted_by"][:4]) == (
        EMAIL,
        ["reviewer"],
        "cli:",
    )
    with db.engine.connect() as conn:
        user = get_user(conn, EMAIL)
        assert operators.has_role(conn, user.id, operators.REVIEWER)
    assert "reviewer revoked" in run(cli, "revoke", EMAIL, "--role", "reviewer")
    assert "no operators" in run(cli, "list")
    with db.engine.connect() as conn:
        assert not operators.has_role(conn, user.id, operators.REVIEWER)

    changes = [e for e in db.entries(target=user.subject_id) if e["type"] == "admin_action"]
    changes = [e for e in changes if str(e["action"]).startswith("operator.")]
    assert [(e["action"], e["details"]) for e in changes] == [  # the repeated grant wrote none
        ("operator.grant", {"role": "reviewer", "roles": ["reviewer"]}),
        ("operator.revoke", {"role": "reviewer", "roles": []}),
    ]
    for entry in changes:
        assert str(entry["actor"]).startswith("cli:") and entry["subject"] == user.subject_id
        assert EMAIL not in json.dumps(entry) and "Olga" not in json.dumps(entry)


def test_unknown_roles_and_roles_not_held_are_refused(cli: CliRunner, db: Instance) -> None:
    unknown = cli.invoke(app, ["users", "operator", "grant", EMAIL, "--role", "root"])
    assert isinstance(unknown.exception, InvalidInput)
    assert "unknown operator role" in unknown.exception.detail
    not_held = cli.invoke(app, ["users", "operator", "revoke", EMAIL, "--role", "reviewer"])
    assert isinstance(not_held.exception, NotFound)
    nobody = cli.invoke(app, ["users", "operator", "grant", "x@example.org", "--role", "reviewer"])
    assert isinstance(nobody.exception, NotFound)
    assert db.entries(action="operator.grant") == []


def test_admin_implies_operator_implies_viewer_and_reviewer_stands_apart(
    cli: CliRunner, db: Instance
) -> None:
    with db.engine.connect() as conn:
        user_id = get_user(conn, EMAIL).id

    def held() -> set[str]:
        with db.engine.connect() as conn:
            return {r for r in sorted(operators.ROLES) if operators.has_role(conn, user_id, r)}

    run(cli, "grant", EMAIL, "--role", "viewer")
    assert held() == {"viewer"}
    run(cli, "grant", EMAIL, "--role", "operator")
    assert held() == {"viewer", "operator"}
    run(cli, "grant", EMAIL, "--role", "admin")
    assert held() == {"viewer", "operator", "admin"}  # not reviewer: deciding cases is apart
    run(cli, "grant", "officer@example.org", "--role", "admin")  # held already: no change
    run(cli, "grant", EMAIL, "--role", "reviewer")
    run(cli, "revoke", EMAIL, "--role", "operator")  # admin (held) still implies operator
    assert held() == {"viewer", "operator", "admin", "reviewer"}
    with db.engine.connect() as conn:
        assert operators.roles_of(conn, user_id) == ("admin", "reviewer", "viewer")


def test_the_last_admin_cannot_be_revoked(cli: CliRunner, db: Instance) -> None:
    other = "second@example.org"
    assert cli.invoke(app, ["users", "add", other, "--name", "Sam Second"]).exit_code == 0
    run(cli, "grant", EMAIL, "--role", "admin")
    last = cli.invoke(app, ["users", "operator", "revoke", EMAIL, "--role", "admin"])
    assert isinstance(last.exception, Conflict)
    assert "last admin" in last.exception.detail
    run(cli, "grant", other, "--role", "admin")
    run(cli, "revoke", EMAIL, "--role", "admin")  # another admin remains
    refused = cli.invoke(app, ["users", "operator", "revoke", other, "--role", "admin"])
    assert isinstance(refused.exception, Conflict)
    assert [e["target"] for e in db.entries(action="operator.revoke")] == [db_subject(db, EMAIL)]


def db_subject(db: Instance, email: str) -> str:
    with db.engine.connect() as conn:
        return get_user(conn, email).subject_id
