"""List loaders: bytes in, `LoadReport` out. No I/O here; the service reads the files."""

from __future__ import annotations

from collections.abc import Sequence

from clearance.errors import InvalidInput
from clearance.screening.loaders import csl, ftm, ofac, un
from clearance.screening.models import ListFormat, LoadReport


def load(fmt: ListFormat, files: Sequence[tuple[str, bytes]]) -> LoadReport:
    """Parse `files` ((name, content) pairs) as one list of the given format."""
    if not files:
        raise InvalidInput("no list files given")
    if fmt is ListFormat.OFAC_SDN:
        return ofac.load(files)
    if len(files) != 1:
        raise InvalidInput(f"a {fmt.value} list is one file, got {len(files)}")
    data = files[0][1]
    if fmt is ListFormat.CSL:
        return csl.load(data)
    if fmt is ListFormat.UN_XML:
        return un.load(data)
    return ftm.load(data)


__all__ = ["load"]
