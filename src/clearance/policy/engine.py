"""The Cedar policy set: read, validated against the schema, parsed once; evaluated in batches."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import cedarpy
import orjson

from clearance.errors import InvalidInput, PolicyError
from clearance.policy.models import Reason

SCHEMA_TEXT = resources.files("clearance.policy").joinpath("packs/schema.cedarschema").read_text()
DEFAULT_PACK = resources.files("clearance.policy").joinpath("packs/default.cedar").read_text()
CONTROLS = resources.files("clearance.policy").joinpath("packs/controls.cedar").read_text()
_RULE_ID = re.compile(r'@id\("([^"]+)"\)')


def with_controls(text: str) -> str:
    """`text` and each operator control (packs/controls.cedar: suspension, retirement) whose @id
    it does not define itself: a policy written before a control existed still enforces it."""
    defined = set(_RULE_ID.findall(text))
    missing = [
        block
        for block in CONTROLS.split("\n\n")
        if (found := _RULE_ID.search(block)) is not None and found.group(1) not in defined
    ]
    return text if not missing else text + "\n\n" + "\n\n".join(missing) + "\n"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    forbids: tuple[Reason, ...]  # the forbid rules that matched (empty when allowed)


def validate(text: str) -> list[str]:
    """Schema errors in a policy text, each prefixed with the rule's @id where it has one."""
    try:
        result = cedarpy.validate_policies(text, SCHEMA_TEXT)
    except ValueError as exc:
        return [f"parse error: {exc}"]
    ids = result.id_annotations_by_policy_id
    return [f"[{ids.get(e.policy_id, e.policy_id)}] {e.error}" for e in result.errors]


def _status(pid: str, text: str) -> int:
    """A forbid rule's @status: the HTTP status of its refusal, 4xx or 5xx (default 451)."""
    if not re.fullmatch(r"[45]\d\d", text):
        raise InvalidInput(f"rule {pid}: @status must be an HTTP status 400-599, not {text!r}")
    return int(text)


class PolicyEngine:
    """A validated, pre-parsed policy set with each rule's annotations."""

    def __init__(self, text: str) -> None:
        errors = validate(text)
        if errors:
            raise InvalidInput("policy does not validate against the schema: " + "; ".join(errors))
        self.text = text
        self.hash = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        self._policies = cedarpy.PolicySet.from_str(text)
        est = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]
        self._reasons: dict[str, Reason] = {}
        for pid, body in est.items():
            ann = body.get("annotations", {})
            if body["effect"] == "forbid" and not (ann.get("id") and ann.get("reason")):
                # A denial must always name its rule and a reason the user can act on.
                raise InvalidInput(f"forbid rule {pid} lacks an @id or @reason annotation")
            self._reasons[pid] = Reason(
                rule=ann.get("id", pid),
                reason=ann.get("reason", ""),
                legal_basis=ann.get("legal_basis", ""),
                status=_status(pid, ann.get("status", "451")),
            )
        self.permit_reason = next(
            (r for pid, r in self._reasons.items() if est[pid]["effect"] == "permit"),
            Reason("permit", "allowed", ""),
        )

    @property
    def rules(self) -> dict[str, Reason]:
        """Each rule's annotations by its @id: what an audit report cites beside a rule."""
        return {r.rule: r for r in self._reasons.values()}

    @classmethod
    def from_files(cls, files: Sequence[Path]) -> PolicyEngine:
        try:
            text = "\n".join(Path(f).read_text(encoding="utf-8") for f in files)
        except OSError as exc:
            raise PolicyError(f"cannot read policy: {exc}") from exc
        return cls(with_controls(text))

    def evaluate(
        self, entities: list[dict[str, Any]], requests: list[dict[str, Any]]
    ) -> list[Verdict]:
        try:
            # The policies were validated against the schema at load and the entities are built
            # by typed code (policy.facts), so requests skip per-call schema checks (2x faster).
            # Serialise with orjson here rather than let cedarpy use the json module.
            wire = [{**r, "context": orjson.dumps(r["context"]).decode()} for r in requests]
            results = cedarpy.is_authorized_batch(
                wire, self._policies, orjson.dumps(entities).decode()
            )
        except (ValueError, RuntimeError) as exc:
            raise PolicyError(f"policy evaluation failed: {exc}") from exc
        verdicts = []
        for result in results:
            if result.diagnostics.errors:
                raise PolicyError(
                    "policy evaluation error: " + "; ".join(result.diagnostics.errors)
                )
            if result.allowed:
                verdicts.append(Verdict(True, ()))
                continue
            forbids = tuple(self._reasons[pid] for pid in result.diagnostics.reasons)
            if not forbids:
                # Denied with no rule: a default deny, which this pack never intends. Fail closed.
                raise PolicyError("policy denied without naming a rule")
            verdicts.append(Verdict(False, forbids))
        return verdicts
