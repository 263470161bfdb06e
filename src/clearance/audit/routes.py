"""The audit log over HTTP, for auditors and standard tooling (mounted by the gateway at /audit).

GET /checkpoint                          the latest signed checkpoint (C2SP tlog-checkpoint),
                                         with the witnesses' cosignatures (tlog-cosignature)
GET /entries/{index}                     the exact bytes that were hashed into leaf `index`
GET /proof/inclusion?index=I&size=N      {"index", "size", "hashes": [base64, ...]} RFC 9162
GET /proof/consistency?first=M&second=N  {"first", "second", "hashes": [...]} RFC 9162
GET /tile/<L>/<N>[.p/<W>]                C2SP tlog-tiles hash tiles
GET /tile/entries/<N>[.p/<W>]            C2SP tlog-tiles entry bundles
GET /schema[/<V>]                        the JSON Schema of entries (current, or version V)
"""

from __future__ import annotations

import base64

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from clearance.audit import entries, entry_schema
from clearance.audit.archive import open_archive
from clearance.audit.reader import LogReader
from clearance.audit.tiles import TILE_WIDTH, parse_tile_path
from clearance.config import AuditSettings
from clearance.errors import ClearanceError, InvalidInput
from clearance.net.responses import error_response

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=1"
MAX_INDEX = 2**63 - 1  # indexes and sizes are stored as 64-bit signed integers


def audit_app(engine: Engine, settings: AuditSettings | None = None) -> Starlette:
    """An ASGI app serving the log stored behind `engine`."""
    reader = LogReader(engine, None if settings is None else open_archive(settings))
    # With witnesses and serve_without_quorum = false: the newest checkpoint a quorum cosigned.
    quorum = 0
    if settings is not None and settings.witnesses and not settings.serve_without_quorum:
        quorum = settings.witness_quorum

    def checkpoint(_: Request) -> Response:
        return PlainTextResponse(reader.checkpoint(quorum), headers={"cache-control": SHORT})

    def entry(request: Request) -> Response:
        index = parse_index(request.path_params["index"], "index")
        return Response(
            reader.entry(index), media_type="application/json", headers={"cache-control": SHORT}
        )

    def inclusion(request: Request) -> Response:
        index = parse_index(request.query_params.get("index"), "index")
        size, proof = reader.inclusion_proof(index, _opt_int(request, "size"))
        return JSONResponse({"index": index, "size": size, "hashes": _b64(proof)})

    def consistency(request: Request) -> Response:
        first = parse_index(request.query_params.get("first"), "first")
        second, proof = reader.consistency_proof(first, _opt_int(request, "second"))
        return JSONResponse({"first": first, "second": second, "hashes": _b64(proof)})

    def tile(request: Request) -> Response:
        ref = parse_tile_path("tile/" + request.path_params["path"])
        if ref.level is None:
            body = reader.entry_bundle(ref.index, ref.width)
        else:
            body = reader.tile(ref.level, ref.index, ref.width)
        cache = IMMUTABLE if ref.width == TILE_WIDTH else SHORT
        return Response(
            body, media_type="application/octet-stream", headers={"cache-control": cache}
        )

    def schema(request: Request) -> Response:
        raw = request.path_params.get("version")
        version = entries.SCHEMA if raw is None else parse_index(raw, "version")
        return Response(
            entry_schema.document(version),
            media_type="application/schema+json",
            headers={"cache-control": SHORT if raw is None else IMMUTABLE},
        )

    def error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ClearanceError)
        return error_response(exc.status, exc.code, exc.detail)

    def routing_error(_: Request, exc: Exception) -> Response:
        """Starlette's own 404 (no such route) and 405, in the same shape as every other error."""
        assert isinstance(exc, HTTPException)
        code = "not_found" if exc.status_code == 404 else "method_not_allowed"
        return error_response(exc.status_code, code, exc.detail, exc.headers)

    return Starlette(
        routes=[
            Route("/checkpoint", checkpoint),
            Route("/entries/{index}", entry),
            Route("/proof/inclusion", inclusion),
            Route("/proof/consistency", consistency),
            Route("/tile/{path:path}", tile),
            Route("/schema", schema),
            Route("/schema/{version}", schema),
        ],
        exception_handlers={ClearanceError: error, HTTPException: routing_error},
    )


def parse_index(value: str | None, name: str) -> int:
    """A non-negative decimal in ASCII digits only: `str.isdigit` also accepts "²" (superscript)
    and Arabic-Indic digits, which `int` then refuses or reads as another number."""
    if value is None or not 0 < len(value) <= 19 or not value.isascii() or not value.isdigit():
        raise InvalidInput(f"{name} must be a non-negative integer")
    number = int(value)
    if number > MAX_INDEX:
        raise InvalidInput(f"{name} is out of range")
    return number


def _opt_int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    return None if value is None else parse_index(value, name)


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]
