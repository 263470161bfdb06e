"""Settings: one frozen object, built once from `clearance.toml` and `CLEARANCE_*` variables.

The schema (`schema.py`) is written once: each setting's type, default and doc. The loader
(`loader.py`) reads the file and the environment against it; an unknown table or key, a value
of the wrong type or an impossible value is a `ConfigError` (exit code 2) naming the file or
variable, the key, what was expected and what was found. Nothing reads the environment at
import time: `load_settings` is called by the CLI (or a test) and the result is passed down.

Relative paths in the file are relative to the file's directory (`evidence_dir` to `data_dir`).
Every key but a list of tables can be set from the environment: `CLEARANCE_<TABLE>_<KEY>`
(`CLEARANCE_<KEY>` for the `[clearance]` table); `CLEARANCE_PORT` stays for `[gateway] port`.
"""

from clearance.config.loader import (
    DEFAULT_CONFIG_NAME,
    Effective,
    Key,
    _resolve_sqlite,
    config_path,
    load_effective,
    load_settings,
    schema,
    settings_from_mapping,
    tables,
)
from clearance.config.schema import (
    DEFAULT_EMBARGOED,
    AuditSettings,
    CipSettings,
    EdgeSettings,
    GatewaySettings,
    GuardSettings,
    IdentitySettings,
    LimitsSettings,
    PolicySettings,
    PortalSettings,
    RedisSettings,
    RetentionSettings,
    ScimSettings,
    ScreeningSettings,
    Settings,
    SsoSettings,
)

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_EMBARGOED",
    "AuditSettings",
    "CipSettings",
    "EdgeSettings",
    "Effective",
    "GatewaySettings",
    "GuardSettings",
    "IdentitySettings",
    "Key",
    "LimitsSettings",
    "PolicySettings",
    "PortalSettings",
    "RedisSettings",
    "RetentionSettings",
    "ScimSettings",
    "ScreeningSettings",
    "Settings",
    "SsoSettings",
    "_resolve_sqlite",
    "config_path",
    "load_effective",
    "load_settings",
    "schema",
    "settings_from_mapping",
    "tables",
]
