"""Classifiers the guard can ask, each behind one small interface (`Classifier.classify`).

- `llama-guard`: a Llama Guard model behind an OpenAI-compatible server (vLLM, TGI, llama.cpp
  server ...). It answers `safe`, or `unsafe` and a line of category codes S1 ... S14 (Llama
  Guard 3 model card, "Hazard Taxonomy and Policy"). With `prompt_format = "chat"` the server's
  chat template writes the task prompt (all categories); with `"llama-guard-3"` Clearance writes
  it (`task_prompt`) listing only the configured categories, and sends it to /completions.
- `moderation`: an endpoint speaking OpenAI's moderation API (POST /moderations).
- `python`: a callable the operator installs, named by `entry_point` ("package.module:name").

Clearance ships no classifier of its own; nothing is downloaded at run time. Every failure is a
`GuardError` with a code, which the guard turns into the configured fail mode.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import aiohttp
import orjson

from clearance.config import GuardSettings
from clearance.errors import ConfigError
from clearance.guard.models import GuardError, Turn, Verdict

# Llama Guard 3 hazard categories (Llama Guard 3 model card; MLCommons AI Safety taxonomy).
LLAMA_GUARD_CATEGORIES = {
    "S1": "Violent Crimes.",
    "S2": "Non-Violent Crimes.",
    "S3": "Sex Crimes.",
    "S4": "Child Exploitation.",
    "S5": "Defamation.",
    "S6": "Specialized Advice.",
    "S7": "Privacy.",
    "S8": "Intellectual Property.",
    "S9": "Indiscriminate Weapons.",
    "S10": "Hate.",
    "S11": "Self-Harm.",
    "S12": "Sexual Content.",
    "S13": "Elections.",
    "S14": "Code Interpreter Abuse.",
}
_CODE = re.compile(r"S\d{1,2}")


class Classifier(Protocol):
    name: str  # what the audit entry names, e.g. "llama-guard:meta-llama/Llama-Guard-3-8B"

    async def classify(self, turns: Sequence[Turn]) -> Verdict: ...


def _flags(categories: Sequence[str], wanted: frozenset[str]) -> bool:
    return bool(categories) and (not wanted or any(c in wanted for c in categories))


def task_prompt(turns: Sequence[Turn], categories: Sequence[str]) -> str:
    """The Llama Guard 3 task prompt (its model card's prompt format), judging the last turn's
    role ('User' for a prompt, 'Agent' for a completion) against the listed categories only."""
    role = "Agent" if turns and turns[-1].role == "assistant" else "User"
    listed = "\n".join(f"{c}: {LLAMA_GUARD_CATEGORIES[c]}" for c in categories)
    conversation = "\n\n".join(
        f"{'Agent' if t.role == 'assistant' else 'User'}: {t.text}" for t in turns
    )
    return (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        f"Task: Check if there is unsafe content in '{role}' messages in conversations according"
        " our safety policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{listed}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n{conversation}\n\n<END CONVERSATION>\n\n"
        f"Provide your safety assessment for ONLY THE LAST {role} message in the above"
        " conversation:\n - First line must read 'safe' or 'unsafe'.\n - If unsafe, a second line"
        " must include a comma-separated list of violated categories."
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def parse_llama_guard(text: str, score: float | None, wanted: frozenset[str]) -> Verdict:
    """`safe`, or `unsafe` then a line of known category codes; anything else is a bad answer."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines or lines[0].lower() not in ("safe", "unsafe"):
        raise GuardError("bad_answer", f"the classifier answered {text[:40]!r}")
    if lines[0].lower() == "safe":
        return Verdict("clear", (), 0.0 if score is None else score)
    codes = tuple(c.strip() for c in lines[1].split(",")) if len(lines) > 1 else ()
    unknown = [c for c in codes if not _CODE.fullmatch(c) or c not in LLAMA_GUARD_CATEGORIES]
    if unknown or not codes:
        raise GuardError("unknown_category", f"unsafe with categories {codes!r}")
    flagged = _flags(codes, wanted)
    return Verdict("flagged" if flagged else "clear", codes, 1.0 if score is None else score)


def _unsafe_probability(choice: Mapping[str, Any]) -> float | None:
    """P(first token is "unsafe") from the answer's logprobs, when the server returned them."""
    content = (choice.get("logprobs") or {}).get("content") or ()
    if not content or not isinstance(content[0], Mapping):
        return None
    for alt in content[0].get("top_logprobs") or ():
        if isinstance(alt, Mapping) and str(alt.get("token", "")).strip().lower() == "unsafe":
            logprob = alt.get("logprob")
            if isinstance(logprob, int | float) and math.isfinite(logprob):
                return min(1.0, math.exp(logprob))
    return None


class _Http:
    """A JSON POST to the classifier's server, every failure a GuardError."""

    def __init__(self, settings: GuardSettings, session: Callable[[], aiohttp.ClientSession]):
        self.base = settings.base_url.rstrip("/")
        self.model = settings.model
        self._session = session
        key = os.environ.get(settings.api_key_env, "") if settings.api_key_env else ""
        if settings.api_key_env and not key:
            raise ConfigError(f"[guard] api_key_env: ${settings.api_key_env} is not set")
        self.headers = {"content-type": "application/json"}
        if key:
            self.headers["authorization"] = f"Bearer {key}"

    async def post(self, path: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            async with self._session().post(
                self.base + path, data=orjson.dumps(body), headers=self.headers
            ) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    code = "http_5xx" if resp.status >= 500 else "http_4xx"
                    raise GuardError(code, f"the classifier answered HTTP {resp.status}")
        except aiohttp.ClientError as exc:
            raise GuardError("unreachable", str(exc)) from exc
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise GuardError("bad_answer", "the classifier's answer is not JSON") from exc
        if not isinstance(doc, Mapping):
            raise GuardError("bad_answer", "the classifier's answer is not a JSON object")
        return doc


class LlamaGuard:
    def __init__(self, settings: GuardSettings, session: Callable[[], aiohttp.ClientSession]):
        if not settings.base_url or not settings.model:
            raise ConfigError('[guard] kind "llama-guard" needs base_url and model')
        unknown = [c for c in settings.categories if c not in LLAMA_GUARD_CATEGORIES]
        if unknown:
            raise ConfigError(f"[guard] categories: {unknown} are not Llama Guard categories")
        self.http = _Http(settings, session)
        self.name = f"llama-guard:{settings.model}"
        self.raw = settings.prompt_format == "llama-guard-3"
        self.wanted = frozenset(settings.categories)
        self.listed = tuple(settings.categories) or tuple(LLAMA_GUARD_CATEGORIES)

    async def classify(self, turns: Sequence[Turn]) -> Verdict:
        if self.raw:
            doc = await self.http.post(
                "/completions",
                {"model": self.http.model, "prompt": task_prompt(turns, self.listed),
                 "max_tokens": 20, "temperature": 0},
            )  # fmt: skip
            choice = _first_choice(doc)
            text = choice.get("text")
            score = None
        else:
            # Llama Guard's chat template wants user/assistant turns, alternating.
            doc = await self.http.post(
                "/chat/completions",
                {"model": self.http.model, "max_tokens": 20, "temperature": 0,
                 "logprobs": True, "top_logprobs": 2,
                 "messages": [{"role": t.role, "content": t.text} for t in turns]},
            )  # fmt: skip
            choice = _first_choice(doc)
            text = (choice.get("message") or {}).get("content")
            score = _unsafe_probability(choice)
        if not isinstance(text, str):
            raise GuardError("bad_answer", "the classifier's answer has no text")
        return parse_llama_guard(text, score, self.wanted)


def _first_choice(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = doc.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise GuardError("bad_answer", "the classifier's answer has no choices")
    return choices[0]


class Moderation:
    def __init__(self, settings: GuardSettings, session: Callable[[], aiohttp.ClientSession]):
        if not settings.base_url:
            raise ConfigError('[guard] kind "moderation" needs base_url')
        self.http = _Http(settings, session)
        self.name = f"moderation:{settings.model or 'default'}"
        self.wanted = frozenset(settings.categories)
        self.threshold = settings.moderation_threshold

    async def classify(self, turns: Sequence[Turn]) -> Verdict:
        # The moderation API judges text, not a conversation: the last turn, whose context the
        # caller already put into it (guard/service.py).
        body: dict[str, Any] = {"input": [turns[-1].text]}
        if self.http.model:
            body["model"] = self.http.model
        doc = await self.http.post("/moderations", body)
        results = doc.get("results")
        if not isinstance(results, list) or len(results) != 1:
            raise GuardError("bad_answer", "the moderation answer has no result for the input")
        scores = results[0].get("category_scores") if isinstance(results[0], Mapping) else None
        if not isinstance(scores, Mapping) or not scores:
            raise GuardError("bad_answer", "the moderation answer has no category_scores")
        over: list[tuple[float, str]] = []
        top = 0.0
        for name, value in scores.items():
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise GuardError("bad_answer", f"category score {name!r} is not in [0, 1]")
            if not self.wanted or name in self.wanted:
                top = max(top, float(value))
                if value >= self.threshold:
                    over.append((float(value), str(name)))
        categories = tuple(name for _, name in sorted(over, reverse=True))
        return Verdict("flagged" if categories else "clear", categories, top)


class PythonClassifier:
    """An in-process classifier: `callable(turns) -> Verdict | {"flagged", "categories",
    "score"}`, sync (run in a thread) or async."""

    def __init__(self, settings: GuardSettings):
        module, _, attr = settings.entry_point.partition(":")
        if not module or not attr:
            raise ConfigError('[guard] kind "python" needs entry_point = "package.module:name"')
        try:
            self.target = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"[guard] entry_point {settings.entry_point!r}: {exc}") from exc
        self.name = f"python:{settings.entry_point}"
        self.wanted = frozenset(settings.categories)

    async def classify(self, turns: Sequence[Turn]) -> Verdict:
        try:
            if inspect.iscoroutinefunction(self.target):
                answer = await self.target(list(turns))
            else:
                answer = await asyncio.to_thread(self.target, list(turns))
        except Exception as exc:  # an installed classifier's fault is a failed check
            raise GuardError("classifier_error", f"{type(exc).__name__}: {exc}") from exc
        if isinstance(answer, Verdict):
            return answer
        if not isinstance(answer, Mapping) or not isinstance(answer.get("flagged"), bool):
            raise GuardError("bad_answer", "the classifier returned neither a Verdict nor a dict")
        categories = tuple(str(c) for c in answer.get("categories") or ())
        score = answer.get("score", 1.0 if answer["flagged"] else 0.0)
        if not isinstance(score, int | float) or not 0 <= score <= 1:
            raise GuardError("bad_answer", "the classifier's score is not in [0, 1]")
        flagged = answer["flagged"] and (
            not self.wanted or any(c in self.wanted for c in categories)
        )
        return Verdict("flagged" if flagged else "clear", categories, float(score))


def build(settings: GuardSettings, session: Callable[[], aiohttp.ClientSession]) -> Classifier:
    """The classifier `[guard] kind` names (checked at start-up: a bad config fails loudly)."""
    if settings.kind == "llama-guard":
        return LlamaGuard(settings, session)
    if settings.kind == "moderation":
        return Moderation(settings, session)
    if settings.kind == "python":
        return PythonClassifier(settings)
    raise ConfigError(f"[guard] kind {settings.kind!r} is not a classifier")
