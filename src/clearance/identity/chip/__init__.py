"""eMRTD chip evidence: Passive Authentication (ICAO 9303-11 §5.1) of the data groups a phone
app reads from a passport's chip over NFC, server-side and pure.

- `der.py`: a bounded walk over the BER-TLV bytes before any parser sees them;
- `lds.py`: EF.SOD, EF.DG1 and EF.DG2 parsed (9303-10 §4.6.2, §4.7.1, §4.7.2);
- `portrait.py`: the ISO/IEC 19794-5 facial record inside DG2, and its image decoded;
- `algorithms.py`: the digests and signatures accepted (`PaPolicy`) and their verification;
- `certificates.py`: the Document Signer certificate and its chain to a CSCA (9303-12);
- `pa.py`: Passive Authentication itself, and the cheap `precheck` the serving process runs;
- `masterlist.py`: CSCA master lists from a PEM bundle, LDIF or an ICAO CMS master list.
"""

from clearance.identity.chip.algorithms import PaPolicy
from clearance.identity.chip.masterlist import MasterList, MasterListFormat
from clearance.identity.chip.pa import ChipEvidence, passive_authentication, precheck
from clearance.identity.chip.portrait import Portrait, PortraitFormat, decode

__all__ = [
    "ChipEvidence",
    "MasterList",
    "MasterListFormat",
    "PaPolicy",
    "Portrait",
    "PortraitFormat",
    "decode",
    "passive_authentication",
    "precheck",
]
