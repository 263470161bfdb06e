"""The demo upstream's deterministic reply: the same request always gets the same text.

Pure functions over the parsed request body; the protocol modules wrap the result in each API's
own shapes.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass

WORDS_PER_CHUNK = 3
# Keys under which the APIs carry prompt text (chat/messages content parts, responses input items).
TEXT_KEYS = frozenset({"content", "text", "input", "system", "instructions"})


@dataclass(frozen=True, slots=True)
class Reply:
    model: str
    prompt_tokens: int
    pieces: tuple[str, ...]  # the text as streamed: a few words per chunk
    completion_tokens: int
    truncated: bool  # cut short by the request's max-tokens limit

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def _chars(value: object) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_chars(v) for v in value)
    if isinstance(value, dict):
        return sum(_chars(v) for k, v in value.items() if k in TEXT_KEYS)
    return 0


def prompt_chars(body: Mapping[str, object], fields: tuple[str, ...]) -> int:
    """Characters of prompt text in the request's `fields` (e.g. ("system", "messages"))."""
    return sum(_chars(body.get(f)) for f in fields)


def approx_tokens(chars: int) -> int:
    # The common rule of thumb of ~4 characters a token; the demo only needs plausible numbers.
    return max(1, math.ceil(chars / 4))


def demo_text(model: str, chars: int) -> str:
    return (
        f"[Clearance demo upstream] Model {model} received {chars} characters. "
        "This reply is deterministic demo text, not the output of a real model; "
        "it arrives in chunks of a few words so that streaming can be seen end to end."
    )


def compose(model: str, chars: int, max_tokens: object = None) -> Reply:
    """The reply to a prompt of `chars` characters; one word counts as one output token."""
    words = demo_text(model, chars).split(" ")
    limit = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else len(words)
    kept = words[:limit]
    pieces = tuple(
        ("" if i == 0 else " ") + " ".join(kept[i : i + WORDS_PER_CHUNK])
        for i in range(0, len(kept), WORDS_PER_CHUNK)
    )
    return Reply(model, approx_tokens(chars), pieces, len(kept), len(kept) < len(words))


def embedding(text: str, dimensions: int) -> tuple[bytes, list[float]]:
    """A unit vector derived from the text: its little-endian float32 bytes and the same values
    as floats (what `encoding_format` "base64" and "float" return)."""
    raw = hashlib.shake_256(text.encode()).digest(4 * dimensions)
    ints = struct.unpack(f"<{dimensions}I", raw)
    values = [i / 2**31 - 1.0 for i in ints]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in values))
    return packed, list(struct.unpack(f"<{dimensions}f", packed))
