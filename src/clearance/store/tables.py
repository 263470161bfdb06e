"""The tables. SQLAlchemy Core, shared by SQLite and PostgreSQL; Alembic migrations create them.

Times are stored as timezone-aware UTC; dates (expiries) as dates. Lists of country codes are JSON
arrays of ISO 3166-1 alpha-2 codes.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

UTC_TIME = sa.DateTime(timezone=True)

# One counter per kind of state; workers poll it to drop exactly the cached state that changed.
state_versions = sa.Table(
    "state_versions",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)

upstreams = sa.Table(
    "upstreams",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("base_url", sa.String(512), nullable=False),
    sa.Column("api_key_env", sa.String(128), nullable=True),
    sa.Column("created_at", UTC_TIME, nullable=False),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("upstream", sa.ForeignKey("upstreams.name"), nullable=False),
    sa.Column("upstream_model", sa.String(128), nullable=False),
    sa.Column("training_compute", sa.Float, nullable=True),
    sa.Column("explicit_classification", sa.String(16), nullable=True),
    sa.Column("controlled", sa.Boolean, nullable=False),
    sa.Column("rationale", sa.Text, nullable=False),
    sa.Column("suspended", sa.Boolean, nullable=False, default=False),
    sa.Column("suspended_reason", sa.Text, nullable=True),
    sa.Column("suspended_at", UTC_TIME, nullable=True),
    sa.Column("created_at", UTC_TIME, nullable=False),
    # The evidence behind an explicit classification decision (a document, a URL).
    sa.Column("classification_evidence", sa.Text, nullable=True),
    # Retired for good: refused to everyone, never a fallback target (docs/catalog.md).
    sa.Column("retired_reason", sa.Text, nullable=True),
    sa.Column("retired_at", UTC_TIME, nullable=True),
    # Classification from evidence (docs/catalog.md): the N and D behind an estimated 6·N·D, and
    # the rule that classified the model when it was last written ("explicit", "evaluation:...").
    sa.Column("parameters", sa.Float, nullable=True),
    sa.Column("tokens", sa.Float, nullable=True),
    sa.Column("classification_rule", sa.String(128), nullable=True),
    # Phased restore after a suspension (catalog/restore.py): NULL percent when not restoring; the
    # cohort's organisations as [{"id", "name"}]; whether they include the internal orgs.
    sa.Column("restore_percent", sa.Integer, nullable=True),
    sa.Column("restore_orgs", sa.JSON, nullable=True),
    sa.Column("restore_internal", sa.Boolean, nullable=True),
    # What a million tokens cost (input, output), for spend budgets (limits/); NULL: not priced.
    sa.Column("input_price", sa.Numeric(18, 6), nullable=True),
    sa.Column("output_price", sa.Numeric(18, 6), nullable=True),
)

# Named evaluation scores per model, the latest per name: evidence the classifier compares with
# the configured [policy] eval_thresholds.
model_evaluations = sa.Table(
    "model_evaluations",
    metadata,
    sa.Column("model_id", sa.ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("source", sa.Text, nullable=True),
    sa.Column("recorded_at", UTC_TIME, nullable=False),
)

model_fallbacks = sa.Table(
    "model_fallbacks",
    metadata,
    sa.Column("model_id", sa.ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("target_id", sa.ForeignKey("models.id"), nullable=False),
)

orgs = sa.Table(
    "orgs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("country", sa.String(2), nullable=True),
    # Restricted-party status of the organisation itself; it applies to every member.
    sa.Column("screening_status", sa.String(20), nullable=False, server_default="clear"),
    sa.Column("created_at", UTC_TIME, nullable=False),
    # Ownership screening (screening/ownership.py): clear | review | restricted, the aggregate
    # share held by listed (or rule-blocked) owners under the rule that applied, and the path
    # that got there (shown to operators only: never to the org's members).
    sa.Column("ownership_status", sa.String(16), nullable=False, server_default="clear"),
    sa.Column("listed_owner_share", sa.Float, nullable=False, server_default="0"),
    sa.Column("ownership_rule", sa.String(64), nullable=True),
    sa.Column("ownership_path", sa.JSON, nullable=True),
    # Know your business: the legal entity behind the name, where it is, who is at the top.
    sa.Column("legal_name", sa.String(400), nullable=True),
    sa.Column("registration_number", sa.String(100), nullable=True),
    sa.Column("registry", sa.String(200), nullable=True),
    sa.Column("incorporation_country", sa.String(2), nullable=True),
    sa.Column("headquarters_country", sa.String(2), nullable=True),
    sa.Column("ultimate_parent", sa.String(400), nullable=True),
    sa.Column("ultimate_parent_country", sa.String(2), nullable=True),
)

# Declared owners of an organisation (KYB): a person or an entity by name, or another org, with
# a direct share. Who declared it and when is kept: declarations are evidence.
org_owners = sa.Table(
    "org_owners",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # person | entity | org
    sa.Column("name", sa.String(400), nullable=False),
    sa.Column("owner_org_id", sa.ForeignKey("orgs.id"), nullable=True),
    sa.Column("percent", sa.Float, nullable=False),
    sa.Column("country", sa.String(2), nullable=True),
    sa.Column("declared_by", sa.String(320), nullable=False),
    sa.Column("declared_at", UTC_TIME, nullable=False),
    # Set when the owner came from an imported file (migration 0017): the import is the
    # evidence (file name, SHA-256, who, when), and `ref` is the owner's id in that file, so
    # the graph continues into the file's holdings of that owner.
    sa.Column(
        "import_id", sa.ForeignKey("ownership_imports.id", ondelete="CASCADE"), nullable=True
    ),
    sa.Column("ref", sa.String(200), nullable=True),
)

# One imported ownership file (FtM or BODS) for the organisation it describes. A new import for
# the same organisation replaces the previous one's owners and holdings (ON DELETE CASCADE).
ownership_imports = sa.Table(
    "ownership_imports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("format", sa.String(8), nullable=False),  # ftm | bods
    sa.Column("file_name", sa.String(400), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("root_ref", sa.String(200), nullable=False),  # the org's id in the file
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("imported_by", sa.String(320), nullable=False),
    sa.Column("imported_at", UTC_TIME, nullable=False),
)

# Holdings from an imported file whose asset is not a Clearance organisation (a company between
# the organisation and its owners): `owner_ref` owns `percent` of `asset_ref`, both ids in the
# file. An owner that is a Clearance organisation is linked by `owner_org_id`.
imported_holdings = sa.Table(
    "imported_holdings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "import_id",
        sa.ForeignKey("ownership_imports.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("record", sa.String(200), nullable=False),  # "line 7" | "statement <id>"
    sa.Column("asset_ref", sa.String(200), nullable=False),
    sa.Column("asset_name", sa.String(400), nullable=False),
    sa.Column("owner_ref", sa.String(200), nullable=False),
    sa.Column("owner_kind", sa.String(16), nullable=False),  # person | entity | org
    sa.Column("owner_name", sa.String(400), nullable=False),
    sa.Column("owner_country", sa.String(2), nullable=True),
    sa.Column("owner_org_id", sa.ForeignKey("orgs.id"), nullable=True),
    sa.Column("percent", sa.Float, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # A random pseudonym: what the audit log and upstreams see instead of the email.
    sa.Column("subject_id", sa.String(40), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(400), nullable=True),
    sa.Column("birth_date", sa.Date, nullable=True),
    sa.Column("org_id", sa.ForeignKey("orgs.id"), nullable=True),
    sa.Column("residence", sa.String(2), nullable=True),
    sa.Column("screening_status", sa.String(20), nullable=False, default="clear"),
    # Bumped on any change to this person's facts; part of the decision cache key.
    sa.Column("facts_version", sa.BigInteger, nullable=False, default=1),
    sa.Column("created_at", UTC_TIME, nullable=False),
    # An operator's suspension: the policy refuses the person every model until reinstated.
    sa.Column("suspended_at", UTC_TIME, nullable=True),
    sa.Column("suspended_reason", sa.Text, nullable=True),
    # The misuse guard's hold on controlled models (guard/strikes.py): NULL none, "pending" while
    # a reviewer has not decided, "confirmed" when one upheld it.
    sa.Column("usage_hold", sa.String(16), nullable=True),
)

# The members of an organisation who may declare its KYB details and owners in the portal (0018).
# Granted by an operator (`clearance orgs admins add`); an admin who leaves the org stops being one.
org_admins = sa.Table(
    "org_admins",
    metadata,
    sa.Column("org_id", sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
    sa.Column("granted_by", sa.String(320), nullable=False),
    sa.Column("granted_at", UTC_TIME, nullable=False),
)

# Limits and budgets (clearance.limits): one row per scope and target; NULL: not limited here.
limits = sa.Table(
    "limits",
    metadata,
    sa.Column("scope", sa.String(8), primary_key=True),  # default | user | org | key
    sa.Column("target", sa.String(64), primary_key=True),  # user/org id, key id, or ""
    sa.Column("rpm", sa.Integer, nullable=True),
    sa.Column("tpm", sa.Integer, nullable=True),
    sa.Column("concurrent", sa.Integer, nullable=True),
    sa.Column("budget", sa.Numeric(18, 6), nullable=True),
    sa.Column("period", sa.String(8), nullable=True),  # day | month
    sa.Column("updated_by", sa.String(320), nullable=False),
    sa.Column("updated_at", UTC_TIME, nullable=False),
)

identity_facts = sa.Table(
    "identity_facts",
    metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("nationalities", sa.JSON, nullable=False),
    sa.Column("us_person", sa.String(16), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("verified_at", UTC_TIME, nullable=False),
    sa.Column("expires", sa.Date, nullable=True),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=True),
    # SHA-256 of the whole key: keys carry 256 bits of CSPRNG output, so a fast hash is enough
    # and keeps authentication off the slow path; the key itself is never stored.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(16), nullable=False),
    sa.Column("allow_fallback", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("revoked_at", UTC_TIME, nullable=True),
    sa.Column("expires_at", UTC_TIME, nullable=True),  # None: until revoked
    # The model ids the key may ask for (a CI job's key for one model); NULL: every model.
    sa.Column("models", sa.JSON, nullable=True),
)

licences = sa.Table(
    "licences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("model_id", sa.ForeignKey("models.id"), nullable=False),
    sa.Column("nationalities", sa.JSON, nullable=False),
    sa.Column("number", sa.String(100), nullable=False),
    sa.Column("expires", sa.Date, nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    # Who issued it: BIS for a deemed-export licence under the EAR (15 CFR 750).
    sa.Column("authority", sa.String(100), nullable=False, server_default="BIS"),
    sa.Column("revoked_at", UTC_TIME, nullable=True),  # revoked licences never reach the policy
    sa.Column("revoked_reason", sa.Text, nullable=True),
)

# Operator API tokens (`/admin/api`): only the SHA-256 of the secret, and the scopes it carries.
admin_tokens = sa.Table(
    "admin_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTC_TIME, nullable=False),
    sa.Column("expires_at", UTC_TIME, nullable=True),
    sa.Column("revoked_at", UTC_TIME, nullable=True),
)
