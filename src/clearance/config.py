"""Settings: one frozen object, built once from `clearance.toml` and `CLEARANCE_*` variables.

Nothing reads the environment at import time; `load_settings` is called by the CLI (or a test)
and the result is passed down. Relative paths in the file are relative to the file's directory.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from clearance.errors import ConfigError

DEFAULT_CONFIG_NAME = "clearance.toml"

# Comprehensive embargoes: 15 CFR 746.2 (Cuba), 746.7 (Iran), 746.4 (North Korea), 746.9 (Syria);
# with OFAC's 31 CFR parts 515, 560, 510 and 542. Data, not code: the operator may change it.
DEFAULT_EMBARGOED = ("CU", "IR", "KP", "SY")


@dataclass(frozen=True, slots=True)
class PolicySettings:
    files: tuple[Path, ...]
    # 90 FR 4544 (ECCN 4E091): models trained with more than 1e26 operations.
    controlled_compute_threshold: float = 1e26
    embargoed_countries: tuple[str, ...] = DEFAULT_EMBARGOED
    verification_max_age_days: int = 365
    decision_cache_size: int = 100_000


@dataclass(frozen=True, slots=True)
class ScreeningSettings:
    match: float = 0.92  # at or above: a match, access is cut
    potential: float = 0.80  # at or above: a potential match, sent to review
    max_matches: int = 5  # matches reported per query


@dataclass(frozen=True, slots=True)
class AuditSettings:
    signing_key_file: Path
    origin: str = "clearance.local/audit"
    batch_max_entries: int = 512
    checkpoint_interval_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 4 * 1024 * 1024
    upstream_connect_timeout: float = 10.0
    upstream_read_timeout: float = 300.0
    trusted_proxies: tuple[str, ...] = ()
    portal_url: str = "http://127.0.0.1:8080/portal"
    # Serve uncontrolled models while the audit log is down; controlled models never are.
    serve_uncontrolled_without_audit: bool = False


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    """[identity]: the evidence vault, face thresholds and trusted assertion sources."""

    master_key_file: Path = Path("identity-master.key")  # resolved against the config file
    evidence_dir: Path = Path("evidence")  # resolved against data_dir
    retention_days: int = 30  # images are erased after this; the decision stays
    face_match_threshold: float = 0.50  # dlib embedding distance below which faces match
    face_review_threshold: float = 0.60  # [match, review): a person looks; above: mismatch
    # [[identity.issuers]] and [[identity.vendors]] tables, validated by identity.assertions.
    issuers: tuple[Mapping[str, Any], ...] = ()
    vendors: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class PortalSettings:
    """[portal]: sign-in by emailed link, sessions, uploads (see docs/portal.md)."""

    # "open": an unknown address that confirms its link creates an account; "closed": only
    # accounts an operator added can sign in. The answer to the sign-in form is the same.
    enrolment: str = "open"
    link_minutes: int = 10  # a sign-in link lasts at most this long (issue 7: <= 10 minutes)
    session_hours: int = 12  # absolute session lifetime
    signins_per_address: int = 5  # links per address per 15 minutes
    signins_per_client: int = 20  # links per client address per 15 minutes
    max_upload_bytes: int = 32 * 1024 * 1024  # one verification: document, selfie and frames
    mail_from: str = "clearance@localhost"
    smtp_host: str = ""  # empty: links are printed on the console (the demo)
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_username: str = ""
    smtp_password_file: Path | None = None  # resolved against the config file
    smtp_ca_file: Path | None = None  # CAs for the mail server's certificate; None: the system's
    # Each worker purges used links, ended sessions, old rate-limit windows and evidence past
    # [identity] retention_days this often (0: never; then run `clearance identity purge`).
    maintenance_minutes: float = 5.0


@dataclass(frozen=True, slots=True)
class Settings:
    config_file: Path | None
    data_dir: Path
    database_url: str
    policy: PolicySettings
    audit: AuditSettings
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    screening: ScreeningSettings = field(default_factory=ScreeningSettings)
    redis_url: str = ""
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    portal: PortalSettings = field(default_factory=PortalSettings)

    def with_database(self, url: str) -> Settings:
        return replace(self, database_url=url)


def config_path(explicit: str | Path | None, environ: Mapping[str, str]) -> Path:
    if explicit is not None:
        return Path(explicit)
    if environ.get("CLEARANCE_CONFIG"):
        return Path(environ["CLEARANCE_CONFIG"])
    return Path.cwd() / DEFAULT_CONFIG_NAME


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file, then apply `CLEARANCE_*` overrides from `environ`."""
    env = os.environ if environ is None else environ
    file = config_path(path, env)
    if not file.is_file():
        raise ConfigError(f"no configuration file at {file}; run `clearance init DIR` first")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {file}: {exc}") from exc
    return settings_from_mapping(raw, base=file.resolve().parent, environ=env, config_file=file)


def settings_from_mapping(
    raw: Mapping[str, Any],
    *,
    base: Path,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    env = {} if environ is None else environ
    core = _table(raw, "clearance")
    pol = _table(raw, "policy")
    aud = _table(raw, "audit")
    gw = _table(raw, "gateway")
    idn = _table(raw, "identity")
    scr = _table(raw, "screening")
    prt = _table(raw, "portal")

    data_dir = _path(base, str(core.get("data_dir", ".")))
    db_url = env.get("CLEARANCE_DATABASE_URL") or str(
        core.get("database_url", "sqlite:///clearance.db")
    )
    policy_files = tuple(_path(base, str(p)) for p in pol.get("files", ["policy/default.cedar"]))
    embargoed = tuple(str(c).upper() for c in pol.get("embargoed_countries", DEFAULT_EMBARGOED))
    try:
        policy = PolicySettings(
            files=policy_files,
            controlled_compute_threshold=float(pol.get("controlled_compute_threshold", 1e26)),
            embargoed_countries=embargoed,
            verification_max_age_days=int(pol.get("verification_max_age_days", 365)),
            decision_cache_size=int(pol.get("decision_cache_size", 100_000)),
        )
        audit = AuditSettings(
            signing_key_file=_path(base, str(aud.get("signing_key", "audit-signing.key"))),
            origin=str(aud.get("origin", "clearance.local/audit")),
            batch_max_entries=int(aud.get("batch_max_entries", 512)),
            checkpoint_interval_seconds=float(aud.get("checkpoint_interval_seconds", 1.0)),
        )
        gateway = GatewaySettings(
            host=str(gw.get("host", "127.0.0.1")),
            port=int(env.get("CLEARANCE_PORT") or gw.get("port", 8080)),
            workers=int(gw.get("workers", 1)),
            max_body_bytes=int(gw.get("max_body_bytes", 4 * 1024 * 1024)),
            upstream_connect_timeout=float(gw.get("upstream_connect_timeout", 10.0)),
            upstream_read_timeout=float(gw.get("upstream_read_timeout", 300.0)),
            trusted_proxies=tuple(str(p) for p in gw.get("trusted_proxies", [])),
            portal_url=str(gw.get("portal_url", "http://127.0.0.1:8080/portal")),
            serve_uncontrolled_without_audit=bool(
                gw.get("serve_uncontrolled_without_audit", False)
            ),
        )
        screening = ScreeningSettings(
            match=float(scr.get("match", 0.92)),
            potential=float(scr.get("potential", 0.80)),
            max_matches=int(scr.get("max_matches", 5)),
        )
        identity = IdentitySettings(
            master_key_file=_path(base, str(idn.get("master_key_file", "identity-master.key"))),
            evidence_dir=_path(data_dir, str(idn.get("evidence_dir", "evidence"))),
            retention_days=int(idn.get("retention_days", 30)),
            face_match_threshold=float(idn.get("face_match_threshold", 0.50)),
            face_review_threshold=float(idn.get("face_review_threshold", 0.60)),
            issuers=tuple(dict(t) for t in idn.get("issuers", [])),
            vendors=tuple(dict(t) for t in idn.get("vendors", [])),
        )
        portal = _portal(prt, base)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc
    if not 0 < screening.potential <= screening.match <= 1 or screening.max_matches < 1:
        raise ConfigError("[screening]: need 0 < potential <= match <= 1 and max_matches >= 1")
    return Settings(
        config_file=config_file,
        data_dir=data_dir,
        database_url=_resolve_sqlite(db_url, data_dir),
        policy=policy,
        audit=audit,
        gateway=gateway,
        screening=screening,
        redis_url=env.get("CLEARANCE_REDIS_URL") or str(core.get("redis_url", "")),
        identity=identity,
        portal=portal,
    )


def _portal(prt: Mapping[str, Any], base: Path) -> PortalSettings:
    password = str(prt.get("smtp_password_file", ""))
    ca_file = str(prt.get("smtp_ca_file", ""))
    portal = PortalSettings(
        enrolment=str(prt.get("enrolment", "open")),
        link_minutes=int(prt.get("link_minutes", 10)),
        session_hours=int(prt.get("session_hours", 12)),
        signins_per_address=int(prt.get("signins_per_address", 5)),
        signins_per_client=int(prt.get("signins_per_client", 20)),
        max_upload_bytes=int(prt.get("max_upload_bytes", 32 * 1024 * 1024)),
        mail_from=str(prt.get("mail_from", "clearance@localhost")),
        smtp_host=str(prt.get("smtp_host", "")),
        smtp_port=int(prt.get("smtp_port", 587)),
        smtp_starttls=bool(prt.get("smtp_starttls", True)),
        smtp_username=str(prt.get("smtp_username", "")),
        smtp_password_file=_path(base, password) if password else None,
        smtp_ca_file=_path(base, ca_file) if ca_file else None,
        maintenance_minutes=float(prt.get("maintenance_minutes", 5.0)),
    )
    if portal.enrolment not in ("open", "closed"):
        raise ConfigError('[portal] enrolment must be "open" or "closed"')
    # OWASP ASVS 5.0 V6 (authentication): an emailed sign-in link lives at most 10 minutes.
    if not 1 <= portal.link_minutes <= 10:
        raise ConfigError("[portal] link_minutes must be between 1 and 10")
    if portal.session_hours < 1 or portal.signins_per_address < 1 or portal.signins_per_client < 1:
        raise ConfigError("[portal] session_hours and the sign-in limits must be at least 1")
    if not 0 <= portal.maintenance_minutes <= 24 * 60:
        raise ConfigError("[portal] maintenance_minutes must be between 0 (off) and 1440")
    return portal


def _table(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _resolve_sqlite(url: str, data_dir: Path) -> str:
    """`sqlite:///relative.db` is relative to the data directory, not the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(data_dir / url[len(prefix) :])
    return url
