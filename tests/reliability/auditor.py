"""A consistency auditor, as an outside witness runs it: poll /audit/checkpoint, check each
signature, and demand that sizes only grow, that one size has one root, and that each new
checkpoint is consistent with the previous one (RFC 9162 §2.1.4 proof from /audit/proof)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

import httpx

from clearance.audit.checkpoint import Checkpoint, open_checkpoint
from clearance.audit.keys import NoteVerifier
from clearance.audit.merkle import verify_consistency
from clearance.errors import VerificationError


@dataclass
class AuditorReport:
    polls: int = 0
    roots: dict[int, bytes] = field(default_factory=dict)  # every checkpoint seen, by size
    proofs: int = 0  # consistency proofs verified
    latencies: list[float] = field(default_factory=list)  # seconds per checkpoint fetch
    violations: list[str] = field(default_factory=list)


class ConsistencyAuditor:
    def __init__(self, client: httpx.Client, verifier: NoteVerifier, origin: str) -> None:
        self._client = client  # base_url: the gateway's /audit
        self._verifier = verifier
        self._origin = origin
        self.last: Checkpoint | None = None
        self.report = AuditorReport()

    def poll(self) -> None:
        self.report.polls += 1
        started = time.perf_counter()
        response = self._client.get("/checkpoint")
        self.report.latencies.append(time.perf_counter() - started)
        if response.status_code == 404:
            return  # nothing signed yet
        response.raise_for_status()
        try:
            checkpoint = open_checkpoint(response.text, self._verifier, self._origin)
        except VerificationError as exc:
            self.report.violations.append(f"bad checkpoint: {exc.detail}")
            return
        self._check(checkpoint)

    def _check(self, new: Checkpoint) -> None:
        seen = self.report.roots.setdefault(new.size, new.root)
        if seen != new.root:
            self.report.violations.append(f"two roots for tree size {new.size}")
            return
        last = self.last
        if last is not None and new.size < last.size:
            self.report.violations.append(f"tree size went back from {last.size} to {new.size}")
            return
        if last is not None and new.size > last.size:
            query = {"first": last.size, "second": new.size}
            body = self._client.get("/proof/consistency", params=query).json()
            proof = [base64.b64decode(h) for h in body["hashes"]]
            try:
                verify_consistency(last.size, new.size, last.root, new.root, proof)
            except VerificationError:
                self.report.violations.append(f"size {new.size} does not extend {last.size}")
                return
            self.report.proofs += 1
        self.last = new

    def run(self, seconds: float, interval: float = 0.1) -> AuditorReport:
        """Poll every `interval` seconds for `seconds`."""
        deadline = time.monotonic() + seconds
        while (now := time.monotonic()) < deadline:
            self.poll()
            time.sleep(max(0.0, interval - (time.monotonic() - now)))
        return self.report
