"""The schema, written once: each setting is a dataclass field carrying its type, its default
and a one-line doc (read by `clearance config show` and docs/configuration.md), and the rule
its value must meet. `clearance.config.loader` walks these classes; nothing else lists keys.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

# Comprehensive embargoes: 15 CFR 746.2 (Cuba), 746.7 (Iran), 746.4 (North Korea), 746.9 (Syria);
# with OFAC's 31 CFR parts 515, 560, 510 and 542. Data, not code: the operator may change it.
DEFAULT_EMBARGOED = ("CU", "IR", "KP", "SY")

SPEC = "clearance.setting"  # the key of a field's metadata that makes it a setting

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Rule:
    """The values a setting may take beyond its type. `phrase` completes "expected an integer"."""

    phrase: str
    test: Callable[[Any], bool]


def between(low: float, high: float) -> Rule:
    return Rule(f"from {low:g} to {high:g}", lambda v: low <= v <= high)


def at_least(low: int) -> Rule:
    return Rule(f"of at least {low}", lambda v: v >= low)


def one_of(*choices: str) -> Rule:
    return Rule("that is " + " or ".join(f'"{c}"' for c in choices), lambda v: v in choices)


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


POSITIVE = Rule("above 0", lambda v: v > 0)
FRACTION = Rule("above 0 and at most 1", lambda v: 0 < v <= 1)
PORT = between(1, 65535)
ONE_LINE = Rule("that is one line, not empty", lambda v: bool(v.strip()) and "\n" not in v)
NOT_EMPTY = Rule("with at least one entry", bool)
WITNESS_TABLES = Rule(
    ", each a table with `url` (http:// or https://) and `vkey` (the witness's C2SP verifier key)"
    " and nothing else",
    lambda v: all(
        set(t) == {"url", "vkey"}
        and isinstance(t["url"], str)
        and re.match(r"https?://[^\s/]+", t["url"]) is not None
        and isinstance(t["vkey"], str)
        and t["vkey"].count("+") >= 2
        for t in v
    ),
)
EVAL_THRESHOLDS = Rule(
    ", each a table with `name` (lower-case letters, digits, . _ -) and a finite `score`, names"
    " distinct",
    lambda v: (
        len({t.get("name") for t in v}) == len(v)
        and all(
            set(t) == {"name", "score"}
            and isinstance(t["name"], str)
            and re.match(r"^[a-z0-9][a-z0-9._-]{0,63}$", t["name"]) is not None
            and isinstance(t["score"], int | float)
            and not isinstance(t["score"], bool)
            and math.isfinite(t["score"])
            for t in v
        )
    ),
)
COUNTRIES = Rule(
    ", each a two-letter country code in capitals (ISO 3166-1 alpha-2)",
    lambda v: all(re.fullmatch("[A-Z]{2}", c) for c in v),
)
NETWORKS = Rule(", each an IP address or CIDR block", lambda v: all(map(_is_network, v)))


def mask_dsn(url: str) -> str:
    """The URL with its password hidden: `postgresql://u:***@host/db`, `...?password=***`."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        credentials, _, host = rest.rpartition("@")
        if ":" in credentials:
            rest = credentials.split(":", 1)[0] + ":***@" + host
    return re.sub(r"(?i)(password=)[^&;\s]*", r"\1***", scheme + sep + rest)


# Names of keys (in [[identity.issuers]] and the like) whose value is itself a secret.
SECRET_NAME = re.compile(r"password|secret|token|(^|_)key$", re.IGNORECASE)


def mask_tables(tables: tuple[Mapping[str, Any], ...]) -> list[dict[str, Any]]:
    """Tables with secret-named values hidden; `secret_file` and the like name a file: shown."""
    return [
        {
            k: "***" if SECRET_NAME.search(k) and not k.endswith(("_file", "_url")) else v
            for k, v in table.items()
        }
        for table in tables
    ]


@dataclass(frozen=True, slots=True)
class Spec:
    """What the schema knows of a setting besides its type and default."""

    doc: str  # one line: `clearance config show` and docs/configuration.md
    key: str | None = None  # its name in the file, when not the attribute's
    rule: Rule | None = None
    relative_to: Literal["file", "data_dir"] = "file"  # for paths
    env: tuple[str, ...] = ()  # variables read besides CLEARANCE_<TABLE>_<KEY>
    mask: Callable[[Any], Any] | None = None  # how `config show` hides the secret part


def setting(
    default: T,
    doc: str,
    *,
    key: str | None = None,
    rule: Rule | None = None,
    relative_to: Literal["file", "data_dir"] = "file",
    env: tuple[str, ...] = (),
    mask: Callable[[Any], Any] | None = None,
) -> T:
    """A dataclass field that is a setting: its default, and its doc on the same line."""
    spec = Spec(doc, key=key, rule=rule, relative_to=relative_to, env=env, mask=mask)
    return field(default=default, metadata={SPEC: spec})


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """[policy]: the Cedar policy and the facts it decides on."""

    files: tuple[Path, ...] = setting(
        (Path("policy/default.cedar"),),
        "Cedar policy files, evaluated together against the built-in schema",
        rule=NOT_EMPTY,
    )
    controlled_compute_threshold: float = setting(
        1e26,  # 90 FR 4544 (ECCN 4E091): models trained with more than 1e26 operations
        "training operations above which a model is controlled unless classified explicitly",
        rule=POSITIVE,
    )
    # Classification from evidence (docs/catalog.md): a score at or above its threshold controls.
    eval_thresholds: tuple[Mapping[str, Any], ...] = setting(
        (),
        "[[policy.eval_thresholds]]: `name` and `score`; a model scoring at or above is controlled",
        rule=EVAL_THRESHOLDS,
    )
    embargoed_countries: tuple[str, ...] = setting(
        DEFAULT_EMBARGOED,
        "comprehensively embargoed countries (15 CFR 746); review against the current eCFR",
        rule=COUNTRIES,
    )
    verification_max_age_days: int = setting(
        365,
        "the longest an identity verification lasts, whatever the document's expiry",
        rule=at_least(1),
    )
    decision_cache_size: int = setting(
        100_000, "policy decisions cached per worker (oldest evicted first)", rule=at_least(1)
    )
    caller_cache_size: int = setting(
        30_000,
        "API keys whose caller (key and person's facts) a worker keeps (least recently used "
        "evicted first)",
        rule=at_least(1),
    )
    # Who `clearance models resume MODEL --internal` restores a suspended model to first.
    internal_orgs: tuple[str, ...] = setting(
        (), "organisations whose members are internal users (the first cohort of a phased restore)"
    )


@dataclass(frozen=True, slots=True)
class ScreeningSettings:
    """[screening]: restricted-party name matching."""

    match: float = setting(
        0.92, "a score at or above this is a match: access is cut", rule=FRACTION
    )
    potential: float = setting(
        0.80,
        "at or above this (and below match): a potential match, sent to review",
        rule=FRACTION,
    )
    max_matches: int = setting(5, "matches reported per query", rule=at_least(1))
    ownership_review: float = setting(
        25.0,
        "percent held by blocked owners from which an organisation goes to review (below 50)",
        rule=between(0, 50),
    )


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """[audit]: the tamper-evident log and its signed checkpoints."""

    signing_key_file: Path = setting(  # noqa: RUF009 - a field() with its doc
        Path("audit-signing.key"),
        "Ed25519 checkpoint signer key (C2SP signed-note form); keep it secret, back it up",
        key="signing_key",
    )
    origin: str = setting(
        "clearance.local/audit",
        "the checkpoint origin line: a name for this log, conventionally a URL without scheme",
        rule=ONE_LINE,
    )
    batch_max_entries: int = setting(
        512, "entries appended in one transaction at most", rule=at_least(1)
    )
    checkpoint_interval_seconds: float = setting(
        1.0, "how often a new checkpoint is signed while entries arrive", rule=POSITIVE
    )
    # C2SP tlog-witness: independent parties cosign a checkpoint only if it extends every one
    # they cosigned before, so the operator cannot show one history to one auditor and another
    # to the next (docs/audit.md "Witnesses").
    witnesses: tuple[Mapping[str, Any], ...] = setting(
        (),
        "[[audit.witnesses]]: C2SP tlog-witnesses for each checkpoint: `url` prefix and `vkey`",
        rule=WITNESS_TABLES,
    )
    witness_quorum: int = setting(
        1,
        "cosignatures from distinct witnesses that make a checkpoint witnessed",
        rule=at_least(1),
    )
    serve_without_quorum: bool = setting(
        True,
        "serve the newest checkpoint before a quorum cosigned it; false: the newest cosigned one",
    )
    archive: Path | None = setting(  # noqa: RUF009 - a field() with its doc
        None,
        "directory old tiles and entry bundles move to (`audit archive`), relative to data_dir",
        relative_to="data_dir",
    )
    archive_bucket: str = setting(
        "",
        "or an S3-compatible bucket for it, s3://bucket/prefix (credentials: the AWS variables)",
        rule=Rule(
            "that is empty or s3://bucket[/prefix]",
            lambda v: (
                v == ""
                or re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?", v) is not None
            ),
        ),
    )
    archive_endpoint: str = setting(
        "", "the bucket's endpoint URL when it is not AWS S3 (MinIO, Ceph, R2 ...); empty: AWS"
    )
    witness_timeout_seconds: float = setting(
        5.0, "how long one witness request may take before it is retried later", rule=POSITIVE
    )


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """[gateway]: the OpenAI and Anthropic API surfaces."""

    host: str = setting("127.0.0.1", "the address `clearance serve` listens on")
    port: int = setting(
        8080, "the port `clearance serve` listens on", rule=PORT, env=("CLEARANCE_PORT",)
    )
    workers: int = setting(1, "worker processes of `clearance serve`", rule=at_least(1))
    max_body_bytes: int = setting(
        4 * 1024 * 1024, "larger request bodies are refused with 413", rule=at_least(1)
    )
    upstream_connect_timeout: float = setting(
        10.0, "seconds to connect to a model provider (504 when exceeded)", rule=POSITIVE
    )
    upstream_read_timeout: float = setting(
        300.0, "seconds to wait for a provider's next bytes (504 when exceeded)", rule=POSITIVE
    )
    trusted_proxies: tuple[str, ...] = setting(
        (), "peers (IP addresses or CIDR blocks) whose X-Forwarded-For is believed", rule=NETWORKS
    )
    portal_url: str = setting(
        "http://127.0.0.1:8080/portal",
        'where denied users verify: the Link rel="blocked-by" of a 451',
    )
    serve_uncontrolled_without_audit: bool = setting(
        False, "keep serving uncontrolled models while the audit log is down (controlled: never)"
    )
    refusal_summary_seconds: int = setting(
        10,
        "requests refused before authentication are logged as one count per this many seconds",
        rule=at_least(1),
    )
    bad_keys_per_client: int = setting(
        20,
        "missing or bad keys one client address may send per window, then 429; 0: no limit",
        rule=at_least(0),
    )
    bad_key_window_seconds: int = setting(
        60, "the window of bad_keys_per_client, in seconds", rule=at_least(1)
    )
    bad_key_delay_seconds: float = setting(
        0.5,
        "a client over its bad-key limit waits this long for its 429 (a tarpit); 0: at once",
        rule=Rule("of at least 0 and at most 10", lambda v: 0 <= v <= 10),
    )


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    """[identity]: the evidence vault, face thresholds and trusted assertion sources."""

    master_key_file: Path = setting(  # noqa: RUF009 - a field() with its doc
        Path("identity-master.key"),
        "AES-256 key wrapping the evidence vault's file keys; keep it secret, back it up apart",
    )
    evidence_dir: Path = setting(  # noqa: RUF009 - a field() with its doc
        Path("evidence"),
        "encrypted document photos, selfies and liveness frames (relative to data_dir)",
        relative_to="data_dir",
    )
    retention_days: int = setting(
        30,
        "evidence images are erased this many days after the decision; it stays",
        rule=at_least(0),
    )
    face_match_threshold: float = setting(
        0.50, "dlib embedding distance below which two faces match", rule=POSITIVE
    )
    face_review_threshold: float = setting(
        0.60,
        "from face_match_threshold up to this a person looks; at or above: no match",
        rule=POSITIVE,
    )
    chip_allow_sha1: bool = setting(
        False,
        "accept chip data (EF.SOD) hashed or signed with SHA-1, as older passports are",
    )
    chip_min_rsa_bits: int = setting(
        2048,
        "the smallest RSA key accepted from a Document Signer or CSCA on the chip path",
        rule=at_least(1024),
    )
    # Lists of tables, each validated by clearance.identity.assertions when it is used.
    issuers: tuple[Mapping[str, Any], ...] = setting(
        (),
        "[[identity.issuers]]: OpenID providers whose verified_claims are trusted",
        mask=mask_tables,
    )
    vendors: tuple[Mapping[str, Any], ...] = setting(
        (),
        "[[identity.vendors]]: verification vendors whose signed webhooks are trusted",
        mask=mask_tables,
    )


@dataclass(frozen=True, slots=True)
class PortalSettings:
    """[portal]: sign-in by emailed link, sessions, uploads (see docs/portal.md)."""

    enrolment: str = setting(
        "open",
        '"open": a confirmed unknown address creates an account; "closed": only added accounts',
        rule=one_of("open", "closed"),
    )
    link_minutes: int = setting(
        # OWASP ASVS 5.0 V6 (authentication): an emailed sign-in link lives at most 10 minutes.
        10,
        "a sign-in link works once, for at most this many minutes",
        rule=between(1, 10),
    )
    session_hours: int = setting(12, "absolute session lifetime", rule=at_least(1))
    signins_per_address: int = setting(
        5, "sign-in links per address in any 15 minutes", rule=at_least(1)
    )
    signins_per_client: int = setting(
        20,
        "sign-in links per client IPv4 address or IPv6 /64 in any 15 minutes",
        rule=at_least(1),
    )
    max_upload_bytes: int = setting(
        32 * 1024 * 1024,
        "one verification upload: document, selfie and frames together",
        rule=at_least(1),
    )
    mail_from: str = setting("clearance@localhost", "the From address of sign-in mail")
    smtp_host: str = setting("", "the mail relay; empty: links are printed on the console (demo)")
    smtp_port: int = setting(587, "the mail relay's submission port", rule=PORT)
    smtp_starttls: bool = setting(
        True, "STARTTLS required, certificate verified; false only for a relay on this host"
    )
    smtp_username: str = setting("", "AUTH after STARTTLS; empty: no AUTH")
    smtp_password_file: Path | None = setting(  # noqa: RUF009 - a field() with its doc
        None, 'owner-only file holding the SMTP password ("": none)'
    )
    smtp_ca_file: Path | None = setting(  # noqa: RUF009 - a field() with its doc
        None, 'CA bundle (PEM) for a relay with a private CA ("": the system\'s)'
    )
    maintenance_minutes: float = setting(
        5.0,
        "how often each worker purges used links, ended sessions and old evidence (0: never)",
        rule=between(0, 24 * 60),
    )


# OpenID Connect Core 1.0 §3.1.2.1: the scope must hold `openid`.
OPENID_SCOPES = Rule("that includes openid", lambda v: "openid" in v)
GROUP_ROLES = Rule(
    ', each "GROUP=ROLE" with ROLE one of viewer, reviewer, operator, admin',
    lambda v: all(
        "=" in m
        and m.rpartition("=")[0].strip() != ""
        and m.rpartition("=")[2].strip() in ("viewer", "reviewer", "operator", "admin")
        for m in v
    ),
)
HEX_DIGESTS = Rule(
    ", each the SHA-256 of a token in 64 lower-case hex digits",
    lambda v: all(re.fullmatch("[0-9a-f]{64}", d) for d in v),
)


@dataclass(frozen=True, slots=True)
class SsoSettings:
    """[sso]: operators sign in with the provider's identity provider by OpenID Connect; its
    groups give console roles, here and through SCIM (docs/console.md)."""

    issuer: str = setting(
        "",
        "the OpenID Provider's issuer URL (https://; http only on loopback); empty: no SSO",
    )
    client_id: str = setting("", "Clearance's client id at the identity provider")
    client_secret_env: str = setting(
        "",
        "the variable holding the client secret (never the secret itself); empty: a public client",
    )
    scopes: tuple[str, ...] = setting(
        ("openid", "email", "profile"),
        "the scopes asked for (the groups claim may need one more, e.g. groups)",
        rule=OPENID_SCOPES,
    )
    groups_claim: str = setting(
        "groups", "the ID token claim listing the person's groups", rule=ONE_LINE
    )
    group_roles: tuple[str, ...] = setting(
        (),
        'which group gives which console role, e.g. ["clearance-admins=admin"]; SCIM uses it too',
        rule=GROUP_ROLES,
    )
    button: str = setting(
        "Sign in with single sign-on", "the sign-in page's SSO button", rule=ONE_LINE
    )

    @property
    def enabled(self) -> bool:
        return self.issuer != ""


@dataclass(frozen=True, slots=True)
class ScimSettings:
    """[scim]: the identity provider provisions and deprovisions operators by SCIM 2.0 at
    /scim/v2 (docs/console.md)."""

    token_sha256: tuple[str, ...] = setting(
        (),
        "SHA-256 (hex) of each bearer token the identity provider may use; empty: SCIM off",
        rule=HEX_DIGESTS,
    )


@dataclass(frozen=True, slots=True)
class JobsSettings:
    """[jobs]: the queue of document verifications `clearance worker` runs (docs/identity.md)."""

    local_worker: str = setting(
        "auto",
        '`clearance serve` runs a worker beside its HTTP workers: "auto" (on SQLite), "on", "off"',
        rule=one_of("auto", "on", "off"),
    )
    concurrency: int = setting(
        1,
        "jobs a worker runs at once, each in a process of its own holding the OCR and face models",
        rule=between(1, 64),
    )
    time_limit_seconds: int = setting(
        120, "a job running longer is stopped and tried again later", rule=between(5, 3600)
    )
    max_attempts: int = setting(
        3,
        "tries of a job (back-off 10 s, 20 s, 40 s ...) before it ends rejected",
        rule=between(1, 20),
    )
    max_pending: int = setting(
        1000,
        "verifications queued or running; beyond it the portal answers 503 with Retry-After",
        rule=at_least(1),
    )
    nice: int = setting(
        10,
        "CPU niceness of job runners: on a shared host the serving workers come first (0: equal)",
        rule=between(0, 19),
    )
    lease_seconds: int = setting(
        30,
        "a job's claim, renewed by its live worker: a worker gone this long leaves its job to"
        " another",
        rule=between(4, 3600),
    )


GUARD_CATEGORY = Rule(
    ", each a category code (S1 ... S14, or a moderation category such as illicit/violent)",
    lambda v: all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9/_-]{0,63}", c) for c in v),
)


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """[guard]: the misuse guard: a classifier the provider trusts checks guarded models' traffic
    (docs/guard.md)."""

    kind: str = setting(
        "",
        'the classifier: "llama-guard", "moderation" or "python"; empty: no guard',
        rule=one_of("", "llama-guard", "moderation", "python"),
    )
    base_url: str = setting(
        "", "the classifier's OpenAI-compatible base URL, e.g. http://guard:8000/v1"
    )
    model: str = setting("", "the classifier's model name, as its server knows it")
    entry_point: str = setting(
        "", 'kind "python": the classifier to load, as "package.module:callable"'
    )
    api_key_env: str = setting(
        "", "the environment variable holding the classifier's API key; empty: none sent"
    )
    prompt_format: str = setting(
        "chat",
        'llama-guard: "chat" (the server\'s chat template) or "llama-guard-3" (our task prompt)',
        rule=one_of("chat", "llama-guard-3"),
    )
    categories: tuple[str, ...] = setting(
        (),
        "the categories that flag (e.g. S2, S14; moderation: illicit); empty: any",
        rule=GUARD_CATEGORY,
    )
    moderation_threshold: float = setting(
        0.5, "moderation: a category score at or above this flags, whatever its flag", rule=FRACTION
    )
    models: tuple[str, ...] = setting(
        (), "the models whose traffic is checked; empty: every controlled model"
    )
    timeout_ms: int = setting(
        2000, "the longest a check may take; then the fail mode applies", rule=at_least(1)
    )
    on_error: str = setting(
        "closed",
        'when a check fails on an uncontrolled model: "closed" refuses, "open" serves',
        rule=one_of("closed", "open"),
    )
    fail_open_models: tuple[str, ...] = setting(
        (), "controlled models served when their check fails (audited); default: none"
    )
    check_output: bool = setting(
        True, "check completions too: streams while they flow, other answers before release"
    )
    stream_check_tokens: int = setting(
        64, "a stream is checked every this many tokens (about 4 characters each)", rule=at_least(1)
    )
    stream_check_ms: int = setting(
        1000,
        "or every this many milliseconds of streaming, whichever comes first",
        rule=at_least(1),
    )
    window_chars: int = setting(
        12_000,
        "the most text one check sends; longer texts go in overlapping windows",
        rule=at_least(1000),
    )
    strikes: int = setting(
        3,
        "flags within window_hours after which a person loses controlled models; 0: never",
        rule=at_least(0),
    )
    window_hours: int = setting(24, "the window strikes are counted in, in hours", rule=at_least(1))
    excerpt_retention_days: int = setting(
        90, "days flagged excerpts are kept, encrypted in the evidence vault", rule=at_least(1)
    )

    @property
    def enabled(self) -> bool:
        return self.kind != ""


TEMPLATES = Rule(
    ", each a path starting with / that holds {model} once",
    lambda v: all(t.startswith("/") and t.count("{model}") == 1 for t in v),
)


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """[edge]: Clearance as the decision point of an edge that enforces it
    (docs/integrations.md)."""

    ext_authz_port: int = setting(
        0,
        "the port of the Envoy ext_authz gRPC service `clearance serve` runs; 0: none",
        rule=between(0, 65535),
    )
    model_header: str = setting(
        "x-clearance-model",
        "the header the edge sets to the model when it sends no body (never the client's)",
        rule=ONE_LINE,
    )
    model_paths: tuple[str, ...] = setting(
        (),
        "paths naming the model, e.g. /openai/deployments/{model}/chat/completions",
        rule=TEMPLATES,
    )


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """[redis]: the Redis every gateway process shares its limit counters in (docs/limits.md)."""

    url: str = setting(
        "",
        "redis://host:6379/0 (or rediss://, unix://); empty: limits are counted in-process, on "
        "one node",
        mask=mask_dsn,
    )
    timeout_ms: int = setting(
        250, "a Redis call slower than this counts as Redis unavailable", rule=at_least(1)
    )
    key_prefix: str = setting("clearance:limits", "the prefix of every key Clearance writes")


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """[limits]: how limits behave when the Redis that counts them is unavailable
    (docs/limits.md); the limits themselves are set with `clearance limits set`."""

    controlled_without_redis: str = setting(
        "closed",
        "Redis unreachable: controlled models are refused with 503 (closed) or counted per "
        "worker (worker)",
        rule=one_of("closed", "worker"),
    )
    uncontrolled_without_redis: str = setting(
        "worker",
        "Redis unreachable: uncontrolled models are counted per worker (worker) or refused "
        "(closed)",
        rule=one_of("worker", "closed"),
    )
    stream_lease_seconds: int = setting(
        900,
        "a request holds its concurrency slot at most this long (a worker killed mid-stream "
        "frees it then)",
        rule=at_least(1),
    )


CIP_FIELDS = ("name", "email", "document", "address", "phone", "payment", "ip")


@dataclass(frozen=True, slots=True)
class CipSettings:
    """[cip]: the Customer Identification Programme record kept per person (docs/cip.md;
    89 FR 5698)."""

    require: tuple[str, ...] = setting(
        (),
        "what the programme keeps: name, email, document, address, phone, payment, ip; "
        "empty: nothing",
        rule=Rule(
            ", each one of " + ", ".join(CIP_FIELDS) + ", once",
            lambda v: set(v) <= set(CIP_FIELDS) and len(set(v)) == len(v),
        ),
    )
    retention_years: int = setting(
        5, "years the daily address rows are kept (a legal hold keeps them longer)", rule=POSITIVE
    )
    flush_seconds: int = setting(
        60, "how often each serving worker writes the addresses it saw", rule=POSITIVE
    )


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """[retention]: how long each kind of record is kept (docs/retention.md)."""

    export_records_years: int = setting(
        # 15 CFR 762.6(a): export records are kept five years from the export (or its end).
        5,
        "years export records (audit log, identity decisions) are kept at least (15 CFR 762.6)",
        rule=at_least(5),
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration: the [clearance] keys, then one object per table."""

    config_file: Path | None = None  # the file it was read from; not itself a setting
    data_dir: Path = setting(  # noqa: RUF009 - a field() with its doc
        Path("."), "where the embedded database and other state live"
    )
    database_url: str = setting(
        "sqlite:///clearance.db",
        "SQLite (relative to data_dir; WAL, synchronous=FULL) or postgresql://...",
        mask=mask_dsn,
    )
    database_listen: bool = setting(
        True,
        "PostgreSQL: workers LISTEN for state changes (false: they poll the versions only)",
    )
    policy: PolicySettings = field(default_factory=PolicySettings)
    screening: ScreeningSettings = field(default_factory=ScreeningSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    portal: PortalSettings = field(default_factory=PortalSettings)
    sso: SsoSettings = field(default_factory=SsoSettings)
    scim: ScimSettings = field(default_factory=ScimSettings)
    jobs: JobsSettings = field(default_factory=JobsSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)
    edge: EdgeSettings = field(default_factory=EdgeSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    cip: CipSettings = field(default_factory=CipSettings)

    def with_database(self, url: str) -> Settings:
        return replace(self, database_url=url)


# Keys whose relation the types cannot say: (table, the lower key, the higher key).
ORDERED = (
    ("screening", "potential", "match"),
    ("identity", "face_match_threshold", "face_review_threshold"),
)
# Keys that once existed: a file that still sets one is told to drop it, not that it is a typo.
REMOVED = {("clearance", "redis_url"): "it is [redis] url now"}
