"""The published JSON Schema of audit entries, one per entry schema version.

An entry says which version it follows in its `schema` field; entries without one are
version 1 (Clearance 0.1). The schema documents ship in the package (audit/schemas/) and are
published in docs/audit/ and at GET /audit/schema[/N]; `clearance audit verify` checks every
entry against the schema of its own version, so a record that the log proves unchanged is also
proved to mean what the schema says.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import jsonschema_rs
import orjson

from clearance.audit.entries import SCHEMA
from clearance.errors import NotFound, VerificationError

VERSIONS = (1, 2, 3)
assert SCHEMA == VERSIONS[-1], "a new entry version needs its schema document"


class EntrySchemaError(VerificationError):
    """An entry that is not valid JSON of a known schema version, or breaks its schema."""


def document(version: int = SCHEMA) -> bytes:
    """The JSON Schema document of one entry version, as published."""
    if version not in VERSIONS:
        raise NotFound(f"no audit entry schema version {version}; known: {VERSIONS}")
    return (resources.files("clearance.audit") / "schemas" / f"entry.v{version}.json").read_bytes()


@functools.cache
def _validator(version: int, entry_type: str) -> Any:
    """The validator of one entry type: the document's definition of that type alone, so that
    an error names the field at fault rather than "no branch of oneOf matched"."""
    schema = orjson.loads(document(version))
    if entry_type not in schema["$defs"]:
        raise EntrySchemaError(f"unknown entry type {entry_type!r} in schema version {version}")
    del schema["oneOf"]
    schema["$ref"] = f"#/$defs/{entry_type}"
    return jsonschema_rs.validator_for(schema)


def version_of(record: dict[str, Any]) -> int:
    version = record.get("schema", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version not in VERSIONS:
        raise EntrySchemaError(f"unknown entry schema version {version!r}")
    if version == 1 and "schema" in record:
        raise EntrySchemaError("version 1 entries carry no schema field")
    return version


def check(raw: bytes) -> dict[str, Any]:
    """The entry as a record, if it is valid against its version's schema; else raise."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EntrySchemaError(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise EntrySchemaError("not a JSON object")
    version = version_of(record)
    entry_type = record.get("type")
    if not isinstance(entry_type, str):
        raise EntrySchemaError("no entry type")
    validator = _validator(version, entry_type)
    if not validator.is_valid(record):
        first = next(iter(validator.iter_errors(record)))
        where = "/".join(str(p) for p in first.instance_path) or "(the entry)"
        raise EntrySchemaError(
            f"does not match schema version {version} at {where}: {first.message}"
        )
    return record
