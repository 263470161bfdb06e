"""Identity verification, in rooms: `document` (image loading, OCR, MRZ reading and repair),
`mrz` (the pure parser, check digits, codes, compose), `biometrics` (face match, liveness),
`assertions` (OIDC4IA ID tokens, vendor webhooks); at the top, the edge that runs a document
verification (`examine.py`), the pure decision (`decision.py`, `names.py`), the cases and their
facts (`service.py`, `models.py`, `tables.py`), the review queue (`review.py`) and the evidence
vault (`vault.py`)."""
