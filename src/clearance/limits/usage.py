"""Tokens an answer used, from the upstream's own usage figures: read from the answer as it is
relayed (only when a tokens-per-minute limit holds the caller), never altering it.

    OpenAI chat / embeddings: usage.total_tokens (or prompt + completion); a stream carries it
    in its last chunk when asked (`stream_options.include_usage`: the gateway asks, and drops
    that chunk again when the client had not, so the client sees what it asked for).
    OpenAI responses: response.usage.total_tokens (stream: the response.completed event).
    Anthropic messages: usage.input_tokens + output_tokens (+ cache tokens); a stream says the
    input in message_start and the output, cumulative, in message_delta.
"""

from __future__ import annotations

import orjson

MAX_BODY = 8 * 1024 * 1024  # a whole answer longer than this is not read for its usage


def tokens_of(usage: dict[str, object]) -> int:
    """The tokens one usage object counts, whichever API wrote it."""
    return sum(split_of(usage))


def split_of(usage: dict[str, object]) -> tuple[int, int]:
    """Input and output tokens of one usage object, whichever API wrote it (what a budget is
    charged: the two are priced apart). A total alone counts as output, the dearer side."""

    def n(name: str) -> int:
        v = usage.get(name)
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0

    if "input_tokens" in usage or "output_tokens" in usage:  # Anthropic; OpenAI responses
        cached = n("cache_creation_input_tokens") + n("cache_read_input_tokens")
        split = (n("input_tokens") + cached, n("output_tokens"))
    else:  # OpenAI chat completions, embeddings
        split = (n("prompt_tokens"), n("completion_tokens"))
    total = n("total_tokens")
    if total > sum(split):  # a total with no parts (or parts that miss some): the rest is output
        split = (split[0], total - split[0])
    return split


def _usage_in(event: object) -> dict[str, object] | None:
    if not isinstance(event, dict):
        return None
    for holder in (event, event.get("message"), event.get("response")):
        if isinstance(holder, dict) and isinstance(holder.get("usage"), dict):
            return holder["usage"]  # type: ignore[no-any-return]
    return None


class UsageMeter:
    """Fed the answer's bytes as they go out; `tokens` once it ended."""

    def __init__(self, *, stream: bool, drop_usage_chunk: bool = False) -> None:
        self.stream = stream
        # The client did not ask for OpenAI's usage chunk: it is taken out of the stream.
        self.drop_usage_chunk = drop_usage_chunk
        self._usage: dict[str, object] = {}
        self._body = bytearray()
        self._line = bytearray()  # a stream's incomplete last line
        self._event = bytearray()  # the event being held while it may be the usage chunk

    def feed(self, chunk: bytes) -> bytes:
        """Read `chunk`; returns what to send the client (the chunk, unless one is dropped)."""
        if not self.stream:
            if len(self._body) + len(chunk) <= MAX_BODY:
                self._body += chunk
            return chunk
        if not self.drop_usage_chunk:
            self._scan(chunk)
            return chunk
        return self._filter(chunk)

    def _scan(self, chunk: bytes) -> None:
        self._line += chunk
        if b"\n" not in chunk:
            return
        *lines, rest = bytes(self._line).split(b"\n")
        self._line = bytearray(rest)
        for line in lines:
            self._read_line(line)

    def _read_line(self, line: bytes) -> bool:
        """Read one SSE line; whether it was OpenAI's usage-only chunk."""
        if not line.startswith(b"data:") or b'"usage"' not in line:
            return False
        try:
            event = orjson.loads(line[5:].strip())
        except orjson.JSONDecodeError:
            return False
        usage = _usage_in(event)
        if usage is None:
            return False
        self._usage.update(usage)
        return isinstance(event, dict) and event.get("choices") == []

    def _filter(self, chunk: bytes) -> bytes:
        """Pass whole events (up to their blank line) except OpenAI's usage-only chunk."""
        self._event += chunk
        out = bytearray()
        while True:
            end = self._event.find(b"\n\n")
            if end < 0:
                break
            event = bytes(self._event[: end + 2])
            del self._event[: end + 2]
            usage_only = any(self._read_line(line) for line in event.split(b"\n"))
            if not usage_only:
                out += event
        return bytes(out)

    def rest(self) -> bytes:
        """What is still held when the stream ends (an event without its blank line)."""
        held, self._event = bytes(self._event), bytearray()
        if self.stream and not self.drop_usage_chunk:
            self._read_line(bytes(self._line))
        return held

    def tokens(self) -> int:
        return sum(self.split())

    def split(self) -> tuple[int, int]:
        """Input and output tokens the answer says it used."""
        if not self.stream and self._body:
            try:
                body = orjson.loads(self._body)
            except orjson.JSONDecodeError:
                return (0, 0)
            usage = _usage_in(body)
            return (0, 0) if usage is None else split_of(usage)
        return split_of(self._usage) if self._usage else (0, 0)
