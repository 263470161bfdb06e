"""The error body of Clearance's own JSON APIs (the audit routes, the operator API, paths no
surface serves), built in one place: `{"error": {"code", "message"}}`. The gateway answers in
each SDK's own shape instead (decision/surfaces.py)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)
