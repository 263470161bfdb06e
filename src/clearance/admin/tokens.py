"""The operator API's bearer tokens: `principals.admin_tokens`, where the console and the CLI
manage them too (surfaces do not import each other). Re-exported under this name for the API's
routes."""

from clearance.principals.admin_tokens import (
    PREFIX,
    AdminToken,
    Scope,
    authenticate,
    create,
    list_all,
    parse_scopes,
    revoke,
    token_hash,
)

__all__ = [
    "PREFIX",
    "AdminToken",
    "Scope",
    "authenticate",
    "create",
    "list_all",
    "parse_scopes",
    "revoke",
    "token_hash",
]
