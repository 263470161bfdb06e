"""When a read of the MRZ name line is trusted, though no check digit covers it.

ICAO 9303-3 §4.9 puts check digits on the document number, the dates and the composite, never
on the name (nor on the codes beside it on TD3's upper line). A misread name therefore passes
every check: "NGUYEN" read as "NGU<EN" is a valid-looking MRZ. What stands in for a check digit
here is agreement between reads that fail independently: the same strip read on the fixed pitch
(`pitch`) at several horizontal scales, where the recogniser's frames fall differently on the
cells each time. A name is taken only when

- enough scales fit the pitch and every one that fits reads the same name (a single dissenting
  scale refuses the line: on the tune set, two scales once agreed on NGU<EN while a third read
  NGUYEN), and
- that name holds the detector's own greedy read of the line in order: the greedy read drops
  and merges letters but seldom invents one. A digit in that read stands for one letter the
  detector could not name (the line holds no digits, 9303-3 §4.6 and §5): on JPEG pages it
  read OCONNOR as 0C0NN0R and GUYEN as G0YEN, so a digit must meet a letter, any one.

The caller asks again at other scales only when a first set does not agree; it never keeps
asking until some set happens to agree with itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from clearance.identity.document.pitch import PitchRead
from clearance.identity.document.repair import name_content, normalise

_NOT_MRZ = re.compile("[^A-Z0-9<]")
_FILLER_RUN = re.compile("<+")


def agreed(reads: Sequence[PitchRead | None], detected: str, *, least: int) -> PitchRead | None:
    """The name line's read when at least `least` scales fitted the pitch, every read that fitted
    gives the same name, and that name holds `detected`; otherwise None (refuse the line)."""
    fitted = [read for read in reads if read is not None]
    names = {name_content(read.text) for read in fitted}
    if (
        len(fitted) < least
        or len(names) != 1
        or not holds(names.pop(), normalise(detected).rstrip("<"))
    ):
        return None
    return fitted[0]


def holds(text: str, part: str) -> bool:
    """`part` is a subsequence of `text`, runs of fillers counted once (OCR doubles them).

    Characters outside the MRZ set in `part` are letters the recogniser could not name — it
    reads the OCR-B X as the multiplication sign U+00D7 or as U+2208 — and are skipped like a
    dropped letter. Without that, every name with an X (EXAMPLE<<ADA) was refused. A digit in
    `part` must meet a letter of `text`, any one, in its place in the order (a name line holds
    no digits: the recogniser misnamed a letter there, and which one is not evidence).
    """
    remaining = iter(_FILLER_RUN.sub("<", text))
    for char in _FILLER_RUN.sub("<", _NOT_MRZ.sub("", part)):
        found = any(c != "<" for c in remaining) if char.isdigit() else char in remaining
        if not found:
            return False
    return True
