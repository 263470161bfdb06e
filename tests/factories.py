"""Test data built through the real services: the directive's personas and the demo catalog."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy.engine import Connection

from clearance.catalog import service as catalog
from clearance.catalog.classification import classify
from clearance.catalog.models import Classification, UpstreamKind
from clearance.config import Settings, settings_from_mapping
from clearance.policy.engine import DEFAULT_PACK
from clearance.principals import service as principals
from clearance.principals.models import Method, UsPerson


def make_settings(tmp_path: Path, db_url: str) -> Settings:
    (tmp_path / "policy").mkdir(exist_ok=True)
    (tmp_path / "policy" / "default.cedar").write_text(DEFAULT_PACK)
    return settings_from_mapping({"clearance": {"database_url": db_url}}, base=tmp_path)


def add_catalog(conn: Connection, threshold: float = 1e26) -> None:
    catalog.add_upstream(conn, "demo", UpstreamKind.OPENAI, "http://127.0.0.1:9/v1", None)
    catalog.add_model(
        conn,
        "fable-4",
        upstream="demo",
        upstream_model=None,
        classification=classify(threshold=threshold, training_compute=3e25),
        explicit=None,
    )
    catalog.add_model(
        conn,
        "fable-5",
        upstream="demo",
        upstream_model=None,
        classification=classify(threshold=threshold, training_compute=4e26),
        explicit=None,
        fallbacks=("fable-4",),
    )
    catalog.add_model(
        conn,
        "mythos-5",
        upstream="demo",
        upstream_model=None,
        classification=classify(
            threshold=threshold,
            explicit=Classification.CONTROLLED,
            rationale="frontier capability evaluation (operator decision)",
        ),
        explicit=Classification.CONTROLLED,
        fallbacks=("fable-5",),
    )


def person(
    conn: Connection,
    email: str,
    nationalities: list[str] | None = None,
    us_person: UsPerson = UsPerson.NONE,
    *,
    org: str | None = None,
    residence: str | None = None,
    expires: date | None = None,
) -> None:
    user = principals.add_user(conn, email, org=org, residence=residence)
    if nationalities:
        principals.set_identity(
            conn,
            user.id,
            nationalities=nationalities,
            us_person=us_person,
            method=Method.DOCUMENT,
            source="attestation",
            expires=expires,
            max_age_days=365,
        )
