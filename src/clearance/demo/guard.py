"""A fake safety classifier: a small raw-ASGI app that judges text deterministically and answers
in the two formats a misuse guard speaks to, for tests and benchmarks of `clearance.guard`.

Endpoints (OpenAI-compatible, as vLLM serves Llama Guard, and as OpenAI serves moderation):

    POST /v1/chat/completions  Llama Guard 3 behind a chat API. The last message whose role is
                               "user" or "assistant" is judged (the earlier ones are context).
                               choices[0].message.content is "safe", "unsafe\\nS2,S14" or
                               "unsafe\\nS2". With "logprobs": true, choices[0].logprobs.content[0]
                               is the first token ("unsafe" or "safe") with its logprob and
                               top_logprobs for both tokens, highest first.
    POST /v1/completions       Llama Guard 3 with its raw task prompt. The role the task line
                               names ('User' or 'Agent') decides which turn is judged: the last
                               turn of that role between <BEGIN CONVERSATION> and
                               <END CONVERSATION>. choices[0].text as above; "logprobs": N adds the
                               legacy completions logprobs object. A prompt without the
                               conversation markers is refused with HTTP 400.
    POST /v1/moderations       OpenAI moderation: "input" is a string, a list of strings (one
                               result each) or a list of {"type": "text", ...} parts (one result
                               for the whole list, as OpenAI answers multi-modal input).
    GET  /v1/models            the model list (any model name is accepted by the endpoints above).
    POST /_control             {"mode": MODE, "slow_seconds": S}: switch the fault mode (204).
    POST /_reset               forget the request count and the texts seen (204).
    GET  /_stats               {"requests": n, "abandoned": slow-mode requests whose client
                                disconnected, "texts": [the last 50 judged texts],
                                "conversations": [the last 50 requests' turns], "mode": MODE}.

Judgement (case-insensitive substring match):
    a trigger phrase (DEFAULT_TRIGGERS, or the `triggers` given) or UNSAFE_MARKER
        -> unsafe: Llama Guard "unsafe\\nS2,S14" (non-violent crimes, code interpreter abuse),
           moderation illicit 0.97, flagged
    BORDERLINE_MARKER
        -> borderline: Llama Guard "unsafe\\nS2" (first-token p(unsafe) = 0.6), moderation
           illicit 0.6 and NOT flagged (OpenAI's own flag; the client's threshold decides)
    anything else
        -> safe: every score 0.01

Fault modes (`GuardMode`), chosen per instance and switchable at run time with /_control:
    normal            as above
    slow              wait `slow_seconds` before answering (ended early, with no answer, if the
                      client disconnects)
    error             HTTP 500 with an OpenAI-shaped error body
    garbage           HTTP 200 that is not the expected format: Llama Guard content/text
                      "maybe", moderation {"foo": 1}
    unknown-category  Llama Guard answers "unsafe\\nS99" to everything; moderation adds a
                      category OpenAI does not have ("cyber", true, 0.99) and flags the result

`max_chars`: a request whose conversation text (all turns of a chat or of a Llama Guard prompt,
or any one moderation input) is longer answers HTTP 400 context_length_exceeded, in OpenAI's
error shape, as a model with a small context would.

`serve_guard(...)` runs one on a free loopback port in a background thread (see
`clearance.net.serving.serve_in_thread`) and yields the app and its base URL; an OpenAI
client's base URL is that plus "/v1".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import re
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

import orjson
from starlette.types import Receive, Scope, Send

from clearance.errors import ClearanceError, InvalidInput, NotFound
from clearance.net.asgi import read_body
from clearance.net.serving import serve_in_thread

UNSAFE_MARKER = "GUARD-TEST-UNSAFE"
BORDERLINE_MARKER = "GUARD-TEST-BORDERLINE"
DEFAULT_TRIGGERS: tuple[str, ...] = (
    "write ransomware",
    "reverse shell",
    "shellcode",
    "keylogger",
    "exploit for cve-",
    "bypass edr",
    "privilege escalation exploit",
    "sql injection payload",
    "credential stealer",
    "botnet",
    UNSAFE_MARKER,
)
GUARD_MODELS = ("meta-llama/Llama-Guard-3-8B", "omni-moderation-latest")
MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
UNKNOWN_MODERATION_CATEGORY = "cyber"
SAFE_SCORE = 0.01
KEPT = 50  # texts and conversations /_stats remembers
JSON_TYPE = b"application/json"

_TASK_ROLE = re.compile(r"Check if there is unsafe content in '(User|Agent)' messages")
_CONVERSATION = re.compile(r"<BEGIN CONVERSATION>(.*?)<END CONVERSATION>", re.DOTALL)
_TURN = re.compile(r"^(User|Agent): ", re.MULTILINE)


class GuardMode(StrEnum):
    NORMAL = "normal"
    SLOW = "slow"
    ERROR = "error"
    GARBAGE = "garbage"
    UNKNOWN_CATEGORY = "unknown-category"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the fake classifier decides about one text."""

    p_unsafe: float  # the first token's probability of "unsafe", and the moderation illicit score
    llama_categories: tuple[str, ...]  # empty when safe
    flagged: bool  # OpenAI moderation's own flag

    @property
    def unsafe(self) -> bool:
        return bool(self.llama_categories)

    def llama_guard(self) -> str:
        return "unsafe\n" + ",".join(self.llama_categories) if self.unsafe else "safe"


SAFE = Verdict(SAFE_SCORE, (), False)
BORDERLINE = Verdict(0.6, ("S2",), False)
UNSAFE = Verdict(0.97, ("S2", "S14"), True)


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # "user" or "assistant" (a Llama Guard prompt's Agent)
    text: str


@dataclass(frozen=True, slots=True)
class _Answer:
    body: object
    status: int = 200


class ContextLengthExceeded(InvalidInput):
    code = "context_length_exceeded"


class MethodNotAllowed(ClearanceError):
    status = 405
    code = "method_not_allowed"


class FakeGuard:
    """The ASGI application. `requests`, `abandoned`, `texts` and `conversations` are what /_stats
    reports; `mode` and `slow_seconds` may be set directly as well as with /_control."""

    def __init__(
        self,
        mode: GuardMode | str = GuardMode.NORMAL,
        *,
        triggers: Sequence[str] = DEFAULT_TRIGGERS,
        slow_seconds: float = 5.0,
        max_chars: int | None = None,
        max_body: int = 8 * 1024 * 1024,
    ) -> None:
        self.mode = _mode(mode)
        self.triggers = tuple(dict.fromkeys(t.casefold() for t in (*triggers, UNSAFE_MARKER)))
        self.slow_seconds = slow_seconds
        self.max_chars = max_chars
        self.max_body = max_body
        self.requests = 0
        self.abandoned = 0  # slow-mode requests whose client disconnected before the answer
        self.texts: deque[str] = deque(maxlen=KEPT)
        self.conversations: deque[list[Turn]] = deque(maxlen=KEPT)
        self._ids = itertools.count(1)

    def judge(self, text: str) -> Verdict:
        folded = text.casefold()
        if any(t in folded for t in self.triggers):
            return UNSAFE
        if BORDERLINE_MARKER.casefold() in folded:
            return BORDERLINE
        return SAFE

    def reset(self) -> None:
        self.requests = 0
        self.abandoned = 0
        self.texts.clear()
        self.conversations.clear()

    def stats(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "abandoned": self.abandoned,
            "texts": list(self.texts),
            "conversations": [
                [{"role": t.role, "content": t.text} for t in turns] for turns in self.conversations
            ],
            "mode": self.mode.value,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        path: str = scope["path"]
        try:
            body = await read_body(receive, dict(scope["headers"]), self.max_body)
            if path.startswith("/_"):
                answer = self._control(method, path, body)
            elif path == "/v1/models" and method == "GET":
                answer = _Answer({"object": "list", "data": [_model(m) for m in GUARD_MODELS]})
            else:
                handler = {
                    "/v1/chat/completions": self._chat,
                    "/v1/completions": self._completion,
                    "/v1/moderations": self._moderation,
                }.get(path)
                if handler is None:
                    raise NotFound(f"unknown path {path} (this is the Clearance fake guard)")
                if method != "POST":
                    raise MethodNotAllowed(f"{method} is not allowed on {path}")
                self.requests += 1
                mode = self.mode  # one request, one mode, whatever /_control does meanwhile
                if mode is GuardMode.SLOW and not await _wait(self.slow_seconds, receive):
                    self.abandoned += 1
                    return  # the client went away: no answer
                if mode is GuardMode.ERROR:
                    answer = _error(500, "simulated guard failure (fake guard in error mode)")
                else:
                    answer = handler(_json(body), mode, f"{next(self._ids):010d}")
        except ClearanceError as exc:
            code = exc.code if isinstance(exc, ContextLengthExceeded) else None
            answer = _error(exc.status, exc.detail, code)
        await _send(send, answer)

    # --- control ------------------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> _Answer:
        if (method, path) == ("GET", "/_stats"):
            return _Answer(self.stats())
        if (method, path) == ("POST", "/_reset"):
            self.reset()
            return _Answer(None, 204)
        if (method, path) == ("POST", "/_control"):
            control = _json(body)
            if "mode" in control:
                self.mode = _mode(control["mode"])
            seconds = control.get("slow_seconds")
            if seconds is not None:
                if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                    raise InvalidInput("slow_seconds: a number is required")
                self.slow_seconds = float(seconds)
            return _Answer(None, 204)
        raise NotFound(f"unknown control {method} {path}")

    # --- Llama Guard --------------------------------------------------------------------------

    def _chat(self, body: Mapping[str, object], mode: GuardMode, rid: str) -> _Answer:
        model = _model_name(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidInput("messages: a non-empty list is required")
        turns = [
            Turn(str(m["role"]), _content(m.get("content")))
            for m in messages
            if isinstance(m, dict) and m.get("role") in ("user", "assistant")
        ]
        if not turns:
            raise InvalidInput("messages: no user or assistant message to classify")
        verdict = self._record(turns, turns[-1].text)
        content, first = self._llama_output(verdict, mode)
        choice: dict[str, object] = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": None,
            "finish_reason": "stop",
        }
        if body.get("logprobs") is True and first is not None:
            choice["logprobs"] = {"content": [_chat_logprob(first, verdict.p_unsafe)]}
        return _Answer(
            {
                "id": f"chatcmpl-guard{rid}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [choice],
                "usage": _usage(sum(len(t.text) for t in turns), content),
            }
        )

    def _completion(self, body: Mapping[str, object], mode: GuardMode, rid: str) -> _Answer:
        model = _model_name(body)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise InvalidInput("prompt: one string is required")
        turns, role = parse_llama_guard_prompt(prompt)
        judged = [t for t in turns if t.role == role]
        if not judged:
            raise InvalidInput(f"the conversation has no {role} turn to classify")
        verdict = self._record(turns, judged[-1].text)
        text, first = self._llama_output(verdict, mode)
        choice: dict[str, object] = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": "stop",
        }
        if isinstance(body.get("logprobs"), int) and first is not None:
            top = _top_logprobs(verdict.p_unsafe)
            choice["logprobs"] = {
                "tokens": [first],
                "token_logprobs": [top[first]],
                "top_logprobs": [top],
                "text_offset": [0],
            }
        return _Answer(
            {
                "id": f"cmpl-guard{rid}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [choice],
                "usage": _usage(len(prompt), text),
            }
        )

    def _llama_output(self, verdict: Verdict, mode: GuardMode) -> tuple[str, str | None]:
        """The generated text, and its first token when that token is "safe" or "unsafe"."""
        if mode is GuardMode.GARBAGE:
            return "maybe", None
        if mode is GuardMode.UNKNOWN_CATEGORY:
            return "unsafe\nS99", "unsafe"
        return verdict.llama_guard(), "unsafe" if verdict.unsafe else "safe"

    # --- OpenAI moderation --------------------------------------------------------------------

    def _moderation(self, body: Mapping[str, object], mode: GuardMode, rid: str) -> _Answer:
        model = body.get("model") or "omni-moderation-latest"
        if not isinstance(model, str):
            raise InvalidInput("model: a string is required")
        texts = _moderation_inputs(body.get("input"))
        for text in texts:
            self._check_length(len(text))
        verdicts = [self._record([Turn("user", text)], text, check=False) for text in texts]
        if mode is GuardMode.GARBAGE:
            return _Answer({"foo": 1})
        results = [_moderation_result(v, mode) for v in verdicts]
        return _Answer({"id": f"modr-guard{rid}", "model": model, "results": results})

    # --- shared -------------------------------------------------------------------------------

    def _record(self, turns: list[Turn], judged: str, *, check: bool = True) -> Verdict:
        if check:
            self._check_length(sum(len(t.text) for t in turns))
        self.texts.append(judged)
        self.conversations.append(turns)
        return self.judge(judged)

    def _check_length(self, chars: int) -> None:
        if self.max_chars is not None and chars > self.max_chars:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self.max_chars} characters. However, "
                f"your messages resulted in {chars} characters. Please reduce the length of the "
                "messages."
            )


def guard_app(
    mode: GuardMode | str = GuardMode.NORMAL,
    *,
    triggers: Sequence[str] = DEFAULT_TRIGGERS,
    slow_seconds: float = 5.0,
    max_chars: int | None = None,
) -> FakeGuard:
    """The fake guard as an ASGI callable. UNSAFE_MARKER is unsafe whatever `triggers` says."""
    return FakeGuard(mode, triggers=triggers, slow_seconds=slow_seconds, max_chars=max_chars)


@contextmanager
def serve_guard(
    mode: GuardMode | str = GuardMode.NORMAL,
    *,
    triggers: Sequence[str] = DEFAULT_TRIGGERS,
    slow_seconds: float = 5.0,
    max_chars: int | None = None,
) -> Iterator[tuple[FakeGuard, str]]:
    """A fake guard on a free 127.0.0.1 port: yields (app, "http://127.0.0.1:PORT")."""
    app = guard_app(mode, triggers=triggers, slow_seconds=slow_seconds, max_chars=max_chars)
    with serve_in_thread(app, lifespan="off") as url:
        yield app, url


def parse_llama_guard_prompt(prompt: str) -> tuple[list[Turn], str]:
    """The turns of a Llama Guard 3 task prompt, and the role ("user" or "assistant") whose last
    turn is to be classified."""
    task = _TASK_ROLE.search(prompt)
    conversation = _CONVERSATION.search(prompt)
    if task is None or conversation is None:
        raise InvalidInput(
            "prompt: not a Llama Guard 3 task prompt (no 'Check if there is unsafe content in "
            "'User'|'Agent' messages' task line, or no <BEGIN CONVERSATION>...<END CONVERSATION>)"
        )
    block = conversation.group(1)
    marks = list(_TURN.finditer(block))
    turns = [
        Turn(
            "user" if m.group(1) == "User" else "assistant",
            block[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(block)].strip(),
        )
        for i, m in enumerate(marks)
    ]
    return turns, "user" if task.group(1) == "User" else "assistant"


def _content(content: object) -> str:
    """A chat message's text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    if content is None:
        return ""
    raise InvalidInput("messages: content must be a string or a list of parts")


def _moderation_inputs(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return [v for v in value if isinstance(v, str)]
        if all(isinstance(v, dict) for v in value):
            # Multi-modal input is one item: OpenAI answers one result for the list.
            return [_content(value)]
    raise InvalidInput("input: a string, a list of strings or a list of content parts is required")


def _moderation_result(verdict: Verdict, mode: GuardMode) -> dict[str, object]:
    scores = dict.fromkeys(MODERATION_CATEGORIES, SAFE_SCORE)
    scores["illicit"] = verdict.p_unsafe
    categories = dict.fromkeys(MODERATION_CATEGORIES, False)
    categories["illicit"] = verdict.flagged
    flagged = verdict.flagged
    if mode is GuardMode.UNKNOWN_CATEGORY:
        scores[UNKNOWN_MODERATION_CATEGORY] = 0.99
        categories[UNKNOWN_MODERATION_CATEGORY] = True
        flagged = True
    return {
        "flagged": flagged,
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": {name: ["text"] for name in categories},
    }


def _top_logprobs(p_unsafe: float) -> dict[str, float]:
    """Log-probabilities of the two first tokens, highest first."""
    pairs = sorted(
        (("unsafe", math.log(p_unsafe)), ("safe", math.log1p(-p_unsafe))),
        key=lambda kv: kv[1],
        reverse=True,
    )
    return dict(pairs)


def _chat_logprob(token: str, p_unsafe: float) -> dict[str, object]:
    top = _top_logprobs(p_unsafe)
    return {
        "token": token,
        "logprob": top[token],
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top.items()
        ],
    }


def _usage(prompt_chars: int, completion: str) -> dict[str, int]:
    prompt_tokens = max(1, prompt_chars // 4)
    completion_tokens = max(1, len(completion.split()))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _model_name(body: Mapping[str, object]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidInput("you must provide a model parameter")
    return model


def _model(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "clearance-fake-guard"}


def _mode(value: object) -> GuardMode:
    if isinstance(value, str) and value in {m.value for m in GuardMode}:
        return GuardMode(value)
    known = ", ".join(m.value for m in GuardMode)
    raise InvalidInput(f"unknown guard mode {value!r} (one of {known})")


def _json(raw: bytes) -> dict[str, object]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("the request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def _error(status: int, message: str, code: str | None = None) -> _Answer:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return _Answer(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status
    )


async def _wait(seconds: float, receive: Receive) -> bool:
    """Sleep `seconds`; False as soon as the client disconnects."""
    disconnect = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait({disconnect}, timeout=seconds)
        return not done
    finally:
        disconnect.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await disconnect


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send(send: Send, answer: _Answer) -> None:
    if answer.status == 204:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    payload = orjson.dumps(answer.body)
    headers = [(b"content-type", JSON_TYPE), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
