"""The chip API: how a phone app that read a passport's chip over NFC sends what it read.

GET  /api/chip   {"csrf": token, "limits": {...}}: the token for the POST and the size limits
POST /api/chip   JSON (docs/identity.md "Chip evidence: the API"):
                 {"dg1", "dg2", "sod", "selfie": base64, "frames": [base64, ...] (optional)}
                 -> 202 {"job", "status": "queued", "location"}; follow `location` as the
                 verification page's script does (GET with Accept: application/json).

The person is the portal session's (the app holds the session cookies of a portal sign-in, as a
web view does) and the POST carries the CSRF token in `X-CSRF-Token`. Every field is untrusted:
the body is bounded by the portal's upload limit, each field is strict base64 and bounded
before decoding, unknown fields are refused, and the chip files' structure is checked here
(`jobs.chip.precheck`) so that a malformed or oversized file is refused at once with the reason;
Passive Authentication and the face match run in the worker.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clearance.errors import InvalidInput, PayloadTooLarge
from clearance.identity.chip.lds import MAX_DG1_BYTES, MAX_DG2_BYTES, MAX_SOD_BYTES
from clearance.identity.document import ImageLimits
from clearance.identity.models import ChipFiles, VerificationMethod
from clearance.jobs import chip as chip_jobs
from clearance.jobs.uploads import MAX_FRAMES
from clearance.portal.context import Portal

_FILES = {"dg1": MAX_DG1_BYTES, "dg2": MAX_DG2_BYTES, "sod": MAX_SOD_BYTES}
_FIELDS = frozenset({*_FILES, "selfie", "frames"})


def _decoded(body: dict[str, Any], field: str, limit: int) -> bytes:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"`{field}` is missing or not a base64 string")
    if len(value) > (limit + 2) // 3 * 4 + 4:  # bounded before decoding
        raise PayloadTooLarge(f"`{field}` is over {limit} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"`{field}` is not base64 (RFC 4648 §4)") from None


def parse_body(raw: bytes) -> chip_jobs.ChipUploads:
    """The request body to the uploads, or a 400/413 naming the field at fault."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput("the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body is not a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidInput(f"unknown field `{unknown[0]}`")
    image_bytes = ImageLimits().max_bytes
    frames = body.get("frames", [])
    if not isinstance(frames, list) or len(frames) > MAX_FRAMES:
        raise InvalidInput(f"`frames` must be a list of at most {MAX_FRAMES} base64 images")
    return chip_jobs.ChipUploads(
        files=ChipFiles(*(_decoded(body, name, limit) for name, limit in _FILES.items())),
        selfie=_decoded(body, "selfie", image_bytes),
        frames=tuple(_decoded({"frame": f}, "frame", image_bytes) for f in frames),
    )


class ChipApi:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    async def describe(self, request: Request) -> Response:
        await self.portal.require_user(request)
        limits = {**_FILES, "selfie": ImageLimits().max_bytes, "frames": MAX_FRAMES}
        return JSONResponse({"csrf": self.portal.csrf.token(request), "limits": limits})

    async def submit(self, request: Request) -> Response:
        p = self.portal
        user = await p.require_user(request)
        p.csrf.check(request, None)  # the X-CSRF-Token header, and the origin
        raw = await request.body()

        def checked() -> chip_jobs.ChipUploads:
            uploads = parse_body(raw)
            chip_jobs.precheck(uploads)  # ~10 ms of ASN.1 parsing: off the event loop
            return uploads

        uploads = await asyncio.to_thread(checked)
        settings = p.settings.jobs
        job_id = await asyncio.to_thread(
            lambda: chip_jobs.enqueue(
                p.engine,
                p.vault(),
                uploads,
                user_id=user.id,
                method=VerificationMethod.REMOTE,
                max_attempts=settings.max_attempts,
                max_pending=settings.max_pending,
            )
        )
        base = request.scope.get("root_path", "")
        location = f"{base}/verifications/{job_id}"
        return JSONResponse(
            {"job": job_id, "status": "queued", "location": location}, status_code=202
        )
