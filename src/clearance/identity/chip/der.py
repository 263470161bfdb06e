"""A bounded walk over BER-TLV / DER before any parser sees the bytes.

Everything a phone app sends from a chip is untrusted. asn1crypto parses lazily and trusts a
length until it reads past it; a length that claims gigabytes, an indefinite length, or a
thousand nested SEQUENCEs would reach it unchecked. This walk refuses them first, in one pass
over the bytes with an explicit stack (no recursion), so the parsers after it only ever see a
tree whose every length fits inside its parent and whose depth is bounded.

Tags are BER-TLV as ISO/IEC 7816-4 and ICAO 9303-10 §4.4 use them (multi-byte tag numbers such
as `5F1F`, `7F61`); lengths must be definite (X.690 §10.1: DER) and at most four octets long.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearance.errors import ChipFormatError

MAX_DEPTH = 24  # an EF.SOD nests ~12 deep (ContentInfo ... a certificate's extension)
MAX_NODES = 20_000  # a DG2 or SOD has a few hundred


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int  # the tag octets as one integer: 0x61, 0x5F1F, 0x7F61 ...
    constructed: bool
    start: int  # offset of the tag
    value_start: int
    end: int  # offset after the value

    def value(self, data: bytes) -> bytes:
        return data[self.value_start : self.end]


def _tag(data: bytes, pos: int, end: int, what: str) -> tuple[int, bool, int]:
    first = data[pos]
    tag, pos = first, pos + 1
    if first & 0x1F == 0x1F:  # high tag number form: following octets while bit 8 is set
        for _ in range(3):
            if pos >= end:
                raise ChipFormatError(f"{what} is truncated inside a tag", reason="truncated")
            octet = data[pos]
            tag, pos = (tag << 8) | octet, pos + 1
            if not octet & 0x80:
                break
        else:
            raise ChipFormatError(f"{what} has a tag over 4 octets", reason="bad_tag")
    return tag, bool(first & 0x20), pos


def _length(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    if pos >= end:
        raise ChipFormatError(f"{what} is truncated before a length", reason="truncated")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0:
        raise ChipFormatError(
            f"{what} uses an indefinite length (not DER, X.690 §10.1)", reason="indefinite_length"
        )
    if count > 4:
        raise ChipFormatError(f"{what} has a length over 4 octets", reason="length_bomb")
    if pos + count > end:
        raise ChipFormatError(f"{what} is truncated inside a length", reason="truncated")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def read_tlv(data: bytes, pos: int, end: int, what: str) -> Tlv:
    """One TLV at `pos` whose value must end by `end`."""
    if pos >= end:
        raise ChipFormatError(f"{what} is empty or truncated", reason="truncated")
    start = pos
    tag, constructed, pos = _tag(data, pos, end, what)
    length, pos = _length(data, pos, end, what)
    if length > end - pos:
        raise ChipFormatError(
            f"{what} claims {length} bytes where {end - pos} remain (a length bomb or a cut file)",
            reason="length_bomb" if length > 2 * len(data) else "truncated",
        )
    return Tlv(tag, constructed, start, pos, pos + length)


def walk(data: bytes, what: str, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> Tlv:
    """Check the whole file: one top-level TLV covering every byte, every nested length inside
    its parent, depth and node count bounded. Returns the top-level TLV."""
    top = read_tlv(data, 0, len(data), what)
    if top.end != len(data):
        extra = len(data) - top.end
        raise ChipFormatError(f"{what} has {extra} bytes after its end", reason="trailing")
    stack: list[tuple[int, int]] = [(top.value_start, top.end)] if top.constructed else []
    nodes = 1
    while stack:
        pos, end = stack.pop()
        if pos >= end:
            continue
        child = read_tlv(data, pos, end, what)
        nodes += 1
        if nodes > max_nodes:
            raise ChipFormatError(f"{what} holds over {max_nodes} elements", reason="too_many")
        stack.append((child.end, end))  # the siblings after this child
        if child.constructed:
            if len(stack) > max_depth:
                raise ChipFormatError(
                    f"{what} nests deeper than {max_depth} levels", reason="too_deep"
                )
            stack.append((child.value_start, child.end))
    return top


def children(data: bytes, parent: Tlv, what: str) -> list[Tlv]:
    """The TLVs directly inside a constructed one (already walked: lengths are known good)."""
    found, pos = [], parent.value_start
    while pos < parent.end:
        child = read_tlv(data, pos, parent.end, what)
        found.append(child)
        pos = child.end
    return found
