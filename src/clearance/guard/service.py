"""The guard stage: which models are checked, one check of a prompt or a completion (windowed,
time-limited), and its fail mode. The verdict becomes a fact of the policy (context.guard)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Sequence

import aiohttp

from clearance.catalog.models import Model
from clearance.config import GuardSettings
from clearance.guard import adapters
from clearance.guard.conversation import windows
from clearance.guard.models import Check, GuardError, Stage, Turn, Verdict

CONTEXT_CHARS = 2000  # of the prompt shown beside a completion: what the answer answers
PARALLEL = 8  # windows of one text checked at once


class Guard:
    def __init__(
        self,
        settings: GuardSettings,
        digest_key: bytes,
        classifier: adapters.Classifier | None = None,
    ) -> None:
        self.settings = settings
        self._digest_key = digest_key
        self._session: aiohttp.ClientSession | None = None
        self.classifier = classifier or adapters.build(settings, self.session)
        self._timeout = settings.timeout_ms / 1000
        self._models = frozenset(settings.models)
        self._fail_open = frozenset(settings.fail_open_models)
        self._parallel = asyncio.Semaphore(PARALLEL)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(total=None),  # the check's own deadline rules
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def guards(self, model: Model) -> bool:
        """Whether this model's traffic is checked: the configured ones, else the controlled."""
        return model.id in self._models if self._models else model.controlled

    def fail_open(self, model: Model) -> bool:
        """Whether a failed check still serves this model: controlled models only when named in
        fail_open_models; uncontrolled ones as `on_error` says."""
        if model.controlled:
            return model.id in self._fail_open
        return self.settings.on_error == "open" or model.id in self._fail_open

    def digest(self, text: str) -> str:
        """Keyed, so the public log's digest of a prompt is no dictionary-attack fingerprint."""
        mac = hmac.new(self._digest_key, text.encode("utf-8", "replace"), hashlib.sha256)
        return "hmac-sha256:" + mac.hexdigest()

    async def check_prompt(self, text: str, model: Model) -> Check:
        """The whole conversation as one transcript, in windows: each judged in full."""
        pieces = [[Turn("user", w)] for w in windows(text, self.settings.window_chars)]
        return await self._check("prompt", pieces, text, model)

    async def check_output(self, prompt: str, completion: str, model: Model) -> Check:
        """A completion (or the part of a stream not yet checked) as the answer to the prompt."""
        context = prompt[-CONTEXT_CHARS:]
        size = max(self.settings.window_chars - len(context), 1000)
        pieces = [[Turn("user", context), Turn("assistant", w)] for w in windows(completion, size)]
        return await self._check("output", pieces, completion, model)

    def failed(self, stage: Stage, code: str, model: Model) -> Check:
        """A check that could not run (the answer could not be read): the fail mode decides."""
        return Check(
            stage=stage,
            verdict=Verdict("error", error=code),
            classifier=self.classifier.name,
            digest=self.digest(""),
            fail_open=self.fail_open(model),
            elapsed_ms=0,
        )

    async def _check(
        self, stage: Stage, pieces: Sequence[Sequence[Turn]], text: str, model: Model
    ) -> Check:
        started = time.perf_counter()
        verdicts: list[Verdict] = []
        try:
            async with asyncio.timeout(self._timeout):
                verdicts = list(await asyncio.gather(*(self._one(p) for p in pieces)))
        except TimeoutError:
            verdicts = [Verdict("error", error="timeout")]
        verdict, excerpt = _combine(verdicts, pieces)
        return Check(
            stage=stage,
            verdict=verdict,
            classifier=self.classifier.name,
            digest=self.digest(text),
            fail_open=verdict.outcome == "error" and self.fail_open(model),
            elapsed_ms=round((time.perf_counter() - started) * 1000),
            excerpt=excerpt,
        )

    async def _one(self, turns: Sequence[Turn]) -> Verdict:
        async with self._parallel:
            try:
                return await self.classifier.classify(turns)
            except GuardError as exc:
                return Verdict("error", error=exc.code)


def _combine(verdicts: Sequence[Verdict], pieces: Sequence[Sequence[Turn]]) -> tuple[Verdict, str]:
    """A flagged window flags the text (whatever failed elsewhere); else a failed one fails it."""
    flagged = [(v, p) for v, p in zip(verdicts, pieces, strict=False) if v.flagged]
    categories = tuple(dict.fromkeys(c for v in verdicts for c in v.categories))
    score = max((v.score for v in verdicts), default=0.0)
    if flagged:
        return Verdict("flagged", categories, score), flagged[0][1][-1].text
    failed = next((v for v in verdicts if v.outcome == "error"), None)
    if failed is not None:
        return Verdict("error", categories, score, failed.error), ""
    return Verdict("clear", categories, score), ""
