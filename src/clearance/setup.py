"""`clearance init`: a new instance directory with configuration, policy and signing key."""

from __future__ import annotations

import os
from pathlib import Path

from clearance.errors import Conflict
from clearance.policy.engine import DEFAULT_PACK

CONFIG_TEMPLATE = """\
# Clearance configuration. Relative paths are relative to this file's directory.
# Any key may be set by an environment variable instead: CLEARANCE_<TABLE>_<KEY>, e.g.
# CLEARANCE_GATEWAY_PORT (CLEARANCE_<KEY> for [clearance]). An unknown key, a wrong type or an
# impossible value stops every command; `clearance config show` prints what is in effect.

[clearance]
# Where the embedded database and other state live.
data_dir = "."
# SQLite (the default, WAL mode, fsync on every commit) or PostgreSQL, e.g.
# "postgresql://clearance@db.internal:5432/clearance". Env: CLEARANCE_DATABASE_URL.
database_url = "sqlite:///clearance.db"
# On PostgreSQL every worker LISTENs for changes (a revoked key, a suspended model) and drops its
# cached state as they commit; false: it polls the version counters only (4 times a second).
database_listen = true

[policy]
# Cedar policy files, evaluated together against the built-in schema.
files = ["policy/default.cedar"]
# Models trained with more than this many operations are controlled unless classified
# explicitly (90 FR 4544, ECCN 4E091: 1e26).
controlled_compute_threshold = 1e26
# Comprehensive embargoes: 15 CFR 746 (Cuba 746.2, Iran 746.7, North Korea 746.4, Syria 746.9);
# OFAC 31 CFR parts 515, 560, 510, 542. Review against the current eCFR before relying on it.
embargoed_countries = ["CU", "IR", "KP", "SY"]
# An identity verification lasts at most this long, whatever the document's expiry.
verification_max_age_days = 365

[screening]
# Restricted-party name matching: a score at or above `match` blocks at once; at or above
# `potential` sends the person to review (no controlled models meanwhile).
match = 0.92
potential = 0.80
max_matches = 5

[audit]
# Ed25519 signer key in the C2SP signed-note text form. Keep it secret; back it up.
signing_key = "audit-signing.key"
# The checkpoint origin line: a name for this log, conventionally a URL without scheme.
origin = "{origin}"

[gateway]
host = "127.0.0.1"
port = 8080  # env: CLEARANCE_PORT
workers = 1
max_body_bytes = 4194304
upstream_connect_timeout = 10.0
upstream_read_timeout = 300.0
# Peers allowed to set X-Forwarded-For (IP addresses or CIDR blocks).
trusted_proxies = []
# Where denied users are sent to verify (the Link rel="blocked-by" of a 451).
portal_url = "http://127.0.0.1:8080/portal"
# Keep serving uncontrolled models if the audit log cannot persist. Controlled models never are.
serve_uncontrolled_without_audit = false
# Requests refused before authentication (missing, unknown, revoked key) are logged as counts,
# one entry per reason, client country and network every this many seconds, not one each.
refusal_summary_seconds = 10
# A client address that sends this many bad keys in the window gets 429 until it ends (0: off).
bad_keys_per_client = 20
bad_key_window_seconds = 60
# ... and waits this long for each 429 (a tarpit: its connections are held, not served fast).
bad_key_delay_seconds = 0.5

[identity]
# AES-256 master key wrapping the per-file keys of the evidence vault. Keep it secret; back it
# up apart from the evidence: without it the evidence cannot be read (that is the point).
master_key_file = "identity-master.key"
# Encrypted document photos, selfies and liveness frames (relative to data_dir).
evidence_dir = "evidence"
# Images are erased this many days after the verification; the decision and its reasons stay.
retention_days = 30
# Face embedding distance (dlib): below match the faces match; from match up to review a
# person looks; at or above review they do not match.
face_match_threshold = 0.50
face_review_threshold = 0.60
# Identity providers whose OpenID Connect for Identity Assurance `verified_claims` are trusted:
# [[identity.issuers]]
# issuer = "https://idp.example"
# audience = "clearance-client-id"
# jwks_url = "https://idp.example/jwks.json"   # or jwks_file = "idp-jwks.json"
# algorithms = ["RS256", "ES256"]
# trust_frameworks = ["eidas", "uk_tfida"]
# Verification vendors whose signed result webhooks are trusted (HMAC-SHA256):
# [[identity.vendors]]
# name = "acme-kyc"
# secret_file = "acme-kyc.secret"
# tolerance_seconds = 300

[portal]
# The enrolment portal at /portal: sign-in by emailed link (docs/portal.md).
# "open": anyone who confirms a link sent to their address gets an account (then verifies);
# "closed": only accounts an operator added (`clearance users add`) can sign in.
enrolment = "open"
# A sign-in link works once, in the browser that asked for it, for this many minutes (<= 10).
link_minutes = 10
session_hours = 12
# Sign-in links per address, and per client address, in any 15 minutes.
signins_per_address = 5
signins_per_client = 20
# One verification upload (document, selfie and liveness frames together).
max_upload_bytes = 33554432
# Outgoing mail. With no smtp_host the links are printed on the console (the demo).
mail_from = "clearance@localhost"
smtp_host = ""
smtp_port = 587
smtp_starttls = true
smtp_username = ""
# smtp_password_file = "smtp-password"   # owner-only file holding the password
# smtp_ca_file = "mail-ca.pem"            # CAs for a private relay (default: the system's)
# Each worker purges used sign-in links, ended sessions, old rate-limit windows and evidence
# older than [identity] retention_days this often; 0 turns it off (then cron the CLI purge).
maintenance_minutes = 5

[retention]
# Export records (the audit log, identity decisions and their derived facts) are kept at least
# this many years (15 CFR 762.6: five); Clearance deletes none of them. Evidence images follow
# [identity] retention_days unless a legal hold keeps them (`clearance audit hold`).
export_records_years = 5
"""


def write_instance(
    directory: Path, *, force: bool = False, origin: str | None = None
) -> list[Path]:
    """Create DIR with clearance.toml, policy/default.cedar and a fresh audit signing key."""
    from clearance.audit.keys import generate_signing_key
    from clearance.identity.vault import generate_master_key

    directory = directory.resolve()
    config = directory / "clearance.toml"
    if config.exists() and not force:
        raise Conflict(f"{config} already exists (use --force to overwrite)")
    log_origin = origin or f"clearance.local/{directory.name or 'audit'}"
    (directory / "policy").mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG_TEMPLATE.replace("{origin}", log_origin), encoding="utf-8")
    policy = directory / "policy" / "default.cedar"
    policy.write_text(DEFAULT_PACK, encoding="utf-8")
    key = directory / "audit-signing.key"
    if not key.exists() or force:
        # Owner-only from the first byte: the key never exists world-readable.
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(generate_signing_key(log_origin) + "\n")
    master = directory / "identity-master.key"
    if not master.exists():  # never replaced, even with force: it would orphan the evidence
        fd = os.open(master, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(generate_master_key() + "\n")
    return [config, policy, key, master]
