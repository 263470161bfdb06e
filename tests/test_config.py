"""The configuration schema: every trap of issue 12 is a one-line error naming file and key."""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import uvicorn

from clearance.cli.app import main
from clearance.cli.config import reference
from clearance.config import (
    DEFAULT_EMBARGOED,
    Settings,
    load_effective,
    load_settings,
    schema,
    settings_from_mapping,
    tables,
)
from clearance.config.schema import SECRET_NAME
from clearance.errors import ConfigError
from clearance.setup import write_instance

DOCS = Path(__file__).parent.parent / "docs" / "configuration.md"


def config(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "clearance.toml"
    file.write_text(text, encoding="utf-8")
    return file


def refused(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    """The error for this file (and environment), checked to be one line."""
    file = config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(file, environ or {})
    detail = info.value.detail
    assert "\n" not in detail
    return detail.removeprefix(f"{file}: ")


# --- the traps of issue 12 -----------------------------------------------------------------


def test_the_string_false_does_not_turn_the_fail_closed_default_off(tmp_path: Path) -> None:
    # Before: bool("false") is True, and the gateway served without an audit log.
    detail = refused(tmp_path, '[gateway]\nserve_uncontrolled_without_audit = "false"\n')
    assert detail == (
        "[gateway] serve_uncontrolled_without_audit: expected a boolean (true or false), "
        'found the string "false"'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[gateway]\nprot = 9\n", "[gateway] prot: unknown key (did you mean port?)"),
        (
            '[portal]\nsmtp_hots = "x"\n',
            "[portal] smtp_hots: unknown key (did you mean smtp_host?)",
        ),
        ("[gatway]\nport = 9\n", "[gatway]: unknown table (did you mean [gateway]?)"),
        (
            "[zzz]\n",
            "[zzz]: unknown table (expected one of [audit], [cip], [clearance], [edge], [gateway], "
            "[guard], [identity], [jobs], [limits], [policy], [portal], [redis], [retention], "
            "[scim], [screening], [sso])",
        ),
        ("port = 9\n", "port: a key of [gateway], not a table"),
        ("gateway = 9\n", "gateway: expected a table [gateway], found the integer 9"),
        (
            '[clearance]\nredis_url = ""\n',
            "[clearance] redis_url: removed (it is [redis] url now); delete it",
        ),
    ],
)
def test_unknown_names_are_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert refused(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[gateway]\nport = "8080"\n',
            '[gateway] port: expected an integer, found the string "8080"',
        ),
        ("[gateway]\nport = true\n", "[gateway] port: expected an integer, found the boolean true"),
        (
            "[gateway]\nworkers = 1.5\n",
            "[gateway] workers: expected an integer, found the number 1.5",
        ),
        (
            "[portal]\nsmtp_starttls = 1\n",
            "[portal] smtp_starttls: expected a boolean (true or false), found the integer 1",
        ),
        (
            '[screening]\nmatch = "0.9"\n',
            '[screening] match: expected a finite number, found the string "0.9"',
        ),
        (
            "[screening]\nmatch = nan\n",
            "[screening] match: expected a finite number, found the number nan",
        ),
        (
            '[policy]\nfiles = "policy/default.cedar"\n',
            "[policy] files: expected an array of paths (strings), "
            'found the string "policy/default.cedar"',
        ),
        (
            "[policy]\nfiles = [1, 2]\n",
            "[policy] files: expected an array of paths (strings), found the array [1, 2]",
        ),
        ("[audit]\norigin = 5\n", "[audit] origin: expected a string, found the integer 5"),
        (
            '[identity]\nissuers = { issuer = "https://idp.example" }\n',
            "[identity] issuers: expected an array of tables, found a table",
        ),
        (
            "[identity]\nvendors = [1]\n",
            "[identity] vendors: expected an array of tables, found the array [1]",
        ),
        (
            "[clearance]\ndatabase_url = 1979-05-27\n",
            "[clearance] database_url: expected a string, found the date 1979-05-27",
        ),
    ],
)
def test_wrong_types_are_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert refused(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[portal]\nlink_minutes = 30\n",
            "[portal] link_minutes: expected an integer from 1 to 10, found 30",
        ),
        (
            '[portal]\nenrolment = "maybe"\n',
            '[portal] enrolment: expected a string that is "open" or "closed", found "maybe"',
        ),
        (
            "[portal]\nsession_hours = 0\n",
            "[portal] session_hours: expected an integer of at least 1, found 0",
        ),
        (
            "[portal]\nmaintenance_minutes = -1\n",
            "[portal] maintenance_minutes: expected a finite number from 0 to 1440, found -1.0",
        ),
        (
            "[screening]\nmax_matches = 0\n",
            "[screening] max_matches: expected an integer of at least 1, found 0",
        ),
        (
            "[screening]\nmatch = 1.5\n",
            "[screening] match: expected a finite number above 0 and at most 1, found 1.5",
        ),
        (
            "[screening]\npotential = 0.95\n",
            "[screening] potential: expected a number at most [screening] match (0.92), found 0.95",
        ),
        (
            "[screening]\nmatch = 0.5\n",
            "[screening] match: expected a number at least [screening] potential (0.8), found 0.5",
        ),
        (
            "[identity]\nface_match_threshold = 0.7\n",
            "[identity] face_match_threshold: expected a number at most "
            "[identity] face_review_threshold (0.6), found 0.7",
        ),
        (
            "[gateway]\nport = 70000\n",
            "[gateway] port: expected an integer from 1 to 65535, found 70000",
        ),
        (
            '[gateway]\ntrusted_proxies = ["10.0.0.0/8", "proxy.internal"]\n',
            "[gateway] trusted_proxies: expected an array of strings, each an IP address or "
            'CIDR block, found ["10.0.0.0/8", "proxy.internal"]',
        ),
        (
            '[policy]\nembargoed_countries = ["IR", "iran"]\n',
            "[policy] embargoed_countries: expected an array of strings, each a two-letter "
            'country code in capitals (ISO 3166-1 alpha-2), found ["IR", "iran"]',
        ),
        (
            "[policy]\nfiles = []\n",
            "[policy] files: expected an array of paths (strings) with at least one entry, "
            "found []",
        ),
        (
            "[policy]\ndecision_cache_size = 0\n",
            "[policy] decision_cache_size: expected an integer of at least 1, found 0",
        ),
        (
            '[audit]\norigin = ""\n',
            '[audit] origin: expected a string that is one line, not empty, found ""',
        ),
        (  # 15 CFR 762.6: export records are kept five years; a shorter period is refused
            "[retention]\nexport_records_years = 3\n",
            "[retention] export_records_years: expected an integer of at least 5, found 3",
        ),
    ],
)
def test_impossible_values_are_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert refused(tmp_path, text) == expected


# --- the environment -----------------------------------------------------------------------


def test_variables_override_the_file_and_name_themselves(tmp_path: Path) -> None:
    file = config(tmp_path, "[gateway]\nport = 9000\n[portal]\nsmtp_host = 'mail.internal'\n")
    env = {
        "CLEARANCE_PORT": "9100",
        "CLEARANCE_DATABASE_URL": "postgresql://clearance:s3cret@db/clearance",
        "CLEARANCE_GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1",
        "CLEARANCE_PORTAL_SMTP_STARTTLS": "0",
        "CLEARANCE_PORTAL_MAINTENANCE_MINUTES": "2.5",
        "CLEARANCE_SCREENING_MATCH": "",  # empty: unset
        "CLEARANCE_REQUIRE_POSTGRES": "1",  # not a setting, and no table's prefix: left alone
    }
    settings, effective = load_effective(file, env)
    assert settings.gateway.port == 9100
    assert settings.gateway.trusted_proxies == ("10.0.0.0/8", "192.0.2.1")
    assert settings.portal.smtp_starttls is False
    assert settings.portal.maintenance_minutes == 2.5
    assert settings.database_url == "postgresql://clearance:s3cret@db/clearance"
    sources = {e.key.dotted: e.source for e in effective}
    assert sources["gateway.port"] == "env CLEARANCE_PORT"
    assert sources["portal.smtp_host"] == f"file {file}"
    assert sources["screening.match"] == "default"
    # The table's own name wins over the old alias.
    env["CLEARANCE_GATEWAY_PORT"] = "9200"
    assert load_settings(file, env).gateway.port == 9200


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("1", True), ("false", False), ("0", False)]
)
def test_boolean_variables_take_true_false_1_0(tmp_path: Path, text: str, value: bool) -> None:
    file = config(tmp_path, "")
    env = {"CLEARANCE_GATEWAY_SERVE_UNCONTROLLED_WITHOUT_AUDIT": text}
    assert load_settings(file, env).gateway.serve_uncontrolled_without_audit is value


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"CLEARANCE_GATEWAY_SERVE_UNCONTROLLED_WITHOUT_AUDIT": "yes"},
            "CLEARANCE_GATEWAY_SERVE_UNCONTROLLED_WITHOUT_AUDIT "
            "([gateway] serve_uncontrolled_without_audit): expected true, false, 1 or 0, "
            'found "yes"',
        ),
        (
            {"CLEARANCE_PORT": "80a"},
            'CLEARANCE_PORT ([gateway] port): expected an integer, found "80a"',
        ),
        (
            {"CLEARANCE_PORTAL_LINK_MINUTES": "60"},
            "CLEARANCE_PORTAL_LINK_MINUTES ([portal] link_minutes): "
            "expected an integer from 1 to 10, found 60",
        ),
        (
            {"CLEARANCE_GATEWAY_PROT": "9"},
            "CLEARANCE_GATEWAY_PROT: no such setting (did you mean CLEARANCE_GATEWAY_PORT?)",
        ),
        (
            {"CLEARANCE_IDENTITY_ISSUERS": "x"},
            "CLEARANCE_IDENTITY_ISSUERS: [identity] issuers is set in the file only",
        ),
        (
            {"CLEARANCE_SCREENING_POTENTIAL": "0.99"},
            "CLEARANCE_SCREENING_POTENTIAL ([screening] potential): expected a number at most "
            "[screening] match (0.92), found 0.99",
        ),
    ],
)
def test_bad_variables_are_errors(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    assert refused(tmp_path, "", env) == expected


# --- what a good file means ----------------------------------------------------------------


def test_the_file_clearance_init_writes_is_the_defaults(tmp_path: Path) -> None:
    write_instance(tmp_path / "i", origin="test.clearance.local/audit")
    settings, effective = load_effective(tmp_path / "i" / "clearance.toml", {})
    defaults = settings_from_mapping({}, base=tmp_path / "i")
    from_file = {e.key.dotted for e in effective if e.source.startswith("file ")}
    assert len(from_file) > 30  # the template names almost every key
    assert settings.audit.origin == "test.clearance.local/audit"
    for part in (*tables(), None):
        mine = settings if part is None else getattr(settings, part)
        theirs = defaults if part is None else getattr(defaults, part)
        for f in fields(mine):
            if f.name not in ("config_file", "origin") and f.name not in tables():
                assert getattr(mine, f.name) == getattr(theirs, f.name), f"{part}.{f.name}"


def test_paths_are_relative_to_the_file_and_the_data_dir(tmp_path: Path) -> None:
    text = (
        '[clearance]\ndata_dir = "state"\ndatabase_url = "sqlite:///c.db"\n'
        '[identity]\nmaster_key_file = "keys/m.key"\nevidence_dir = "ev"\n'
        '[portal]\nsmtp_password_file = ""\nsmtp_ca_file = "/etc/ca.pem"\n'
        "[[identity.issuers]]\nissuer = 'https://idp.example'\naudience = 'c'\n"
    )
    settings = load_settings(config(tmp_path, text), {})
    base = tmp_path.resolve()
    assert settings.data_dir == base / "state"
    assert settings.database_url == f"sqlite:///{base / 'state' / 'c.db'}"
    assert settings.identity.master_key_file == base / "keys" / "m.key"
    assert settings.identity.evidence_dir == base / "state" / "ev"
    assert settings.policy.files == (base / "policy" / "default.cedar",)
    assert settings.audit.signing_key_file == base / "audit-signing.key"
    assert settings.portal.smtp_password_file is None
    assert settings.portal.smtp_ca_file == Path("/etc/ca.pem")
    assert settings.identity.issuers == ({"issuer": "https://idp.example", "audience": "c"},)
    assert settings.policy.embargoed_countries == DEFAULT_EMBARGOED
    assert settings.with_database("sqlite:///:memory:").database_url == "sqlite:///:memory:"


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no configuration file at .*nope\.toml"):
        load_settings(tmp_path / "nope.toml", {})
    file = config(tmp_path, "[gateway\n")
    with pytest.raises(ConfigError, match=rf"cannot read {re.escape(str(file))}: "):
        load_settings(file, {})


# --- start-up stops: exit code 2, one line, nothing started --------------------------------


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["clearance", *args])
    with pytest.raises(SystemExit) as info:
        main()
    assert isinstance(info.value.code, int)
    return info.value.code


def test_a_bad_configuration_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    file = config(tmp_path, "[gateway]\nprot = 9\n")
    assert run_main(monkeypatch, "--config", str(file), "models", "list") == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {file}: [gateway] prot: unknown key (did you mean port?)\n"
    assert captured.out == ""


def test_serve_starts_nothing_on_a_bad_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: started.append(a))
    monkeypatch.delenv("CLEARANCE_CONFIG", raising=False)
    file = config(tmp_path, '[gateway]\nserve_uncontrolled_without_audit = "false"\n')
    assert run_main(monkeypatch, "serve", "--config", str(file)) == 2
    assert started == []
    assert "CLEARANCE_CONFIG" not in os.environ
    assert capsys.readouterr().err.count("\n") == 1


# --- the schema itself ---------------------------------------------------------------------


def test_every_setting_has_a_one_line_doc_and_a_default_it_allows() -> None:
    for key in schema():
        doc = key.spec.doc
        assert doc and "\n" not in doc and len(doc) <= 100, key.dotted
        rule = key.spec.rule
        value = key.default
        assert rule is None or rule.test(value), key.dotted
        if isinstance(value, float):
            assert math.isfinite(value)


def test_variable_names_are_unique_and_follow_the_scheme() -> None:
    names = [v for key in schema() for v in key.variables]
    assert len(names) == len(set(names))
    assert "CLEARANCE_DATABASE_URL" in names and "CLEARANCE_PORT" in names
    assert "CLEARANCE_GATEWAY_PORT" in names and "CLEARANCE_CONFIG" not in names


def test_secret_named_strings_are_masked() -> None:
    for key in schema():
        if key.kind.expected == "a string" and SECRET_NAME.search(key.name):
            assert key.shown("hunter2") != "hunter2", key.dotted
    database = next(k for k in schema() if k.dotted == "clearance.database_url")
    assert database.shown("postgresql://u:p%40ss@db:5432/c") == "postgresql://u:***@db:5432/c"
    assert database.shown("postgresql://db/c?password=x&sslmode=require") == (
        "postgresql://db/c?password=***&sslmode=require"
    )
    vendors = next(k for k in schema() if k.dotted == "identity.vendors")
    shown = vendors.shown(({"name": "acme", "secret": "s", "secret_file": "acme.secret"},))
    assert shown == [{"name": "acme", "secret": "***", "secret_file": "acme.secret"}]


def test_redis_url_is_in_the_redis_table(tmp_path: Path) -> None:
    assert not hasattr(Settings(), "redis_url")
    assert Settings().redis.url == ""  # limits counted in-process
    settings = load_settings(config(tmp_path, ""), {"CLEARANCE_REDIS_URL": "redis://cache"})
    assert settings.redis.url == "redis://cache"
    url = next(k for k in schema() if k.dotted == "redis.url")
    assert url.shown("redis://:hunter2@cache:6379/0") == "redis://:***@cache:6379/0"


def test_the_documentation_lists_every_setting_from_the_schema() -> None:
    # Regenerate with `clearance config reference`.
    assert reference() in DOCS.read_text(encoding="utf-8")


# --- classification from evidence (issue 17, item 2) -----------------------------------------


def test_eval_thresholds_are_tables_of_name_and_score(tmp_path: Path) -> None:
    good = '[[policy.eval_thresholds]]\nname = "cyber-uplift"\nscore = 0.5\n'
    settings = load_settings(config(tmp_path, good), {})
    assert [dict(t) for t in settings.policy.eval_thresholds] == [
        {"name": "cyber-uplift", "score": 0.5}
    ]
    for bad in (
        '[[policy.eval_thresholds]]\nname = "cyber-uplift"\nscore = "high"\n',
        '[[policy.eval_thresholds]]\nname = "Cyber Uplift"\nscore = 0.5\n',
        '[[policy.eval_thresholds]]\nname = "x"\n',
        '[[policy.eval_thresholds]]\nname = "x"\nscore = nan\n',
        good + good,
    ):
        assert refused(tmp_path, bad).startswith("[policy] eval_thresholds: expected an array")
