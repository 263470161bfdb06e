"""SCIM 2.0 provisioning of operators (RFC 7643, RFC 7644; docs/operators.md): tables.py,
service.py (users, groups and what they do to roles and sessions), views.py (the HTTP API).

    Mount("/scim/v2", app=scim_app(settings, engine, audit))

Without `[scim] token_sha256` the mount answers every request with a SCIM 404 and scim2-models
is never loaded: its pydantic models cost a worker about 1.4 s of start-up and 15 MB.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from clearance.audit.service import AuditLog
from clearance.config import Settings
from clearance.errors import ClearanceError
from clearance.portal.provisioning import GroupRoles

ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


async def _off(_request: Request) -> Response:
    body = {"schemas": [ERROR_URN], "status": "404", "detail": "SCIM is not configured here"}
    return JSONResponse(body, status_code=404, media_type="application/scim+json")


def scim_app(settings: Settings, engine: Engine, audit: AuditLog) -> ASGIApp:
    if not settings.scim.token_sha256:
        return Starlette(
            routes=[Route("/{path:path}", _off, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
        )
    # Loaded here, where SCIM is on (see above).
    from scim2_models import SCIMException

    from clearance.portal.scim.views import ScimViews, error_response

    views = ScimViews(
        engine, audit, settings.scim.token_sha256, GroupRoles.from_settings(settings.sso)
    )
    one = ["GET", "PUT", "PATCH", "DELETE"]
    return Starlette(
        routes=[
            Route("/ServiceProviderConfig", views.service_provider_config),
            Route("/ResourceTypes", views.resource_types),
            Route("/ResourceTypes/{name}", views.resource_types),
            Route("/Schemas", views.schemas),
            Route("/Schemas/{urn}", views.schemas),
            Route("/Users", views.list, methods=["GET"]),
            Route("/Users", views.create, methods=["POST"]),
            Route("/Groups", views.list, methods=["GET"]),
            Route("/Groups", views.create, methods=["POST"]),
            *(
                Route(f"/{kind}/{{id}}", endpoint, methods=[method])
                for kind in ("Users", "Groups")
                for method, endpoint in zip(
                    one, (views.get, views.replace, views.patch, views.delete), strict=True
                )
            ),
        ],
        exception_handlers={
            ClearanceError: error_response,
            SCIMException: error_response,
            HTTPException: error_response,
        },
    )


__all__ = ["scim_app"]
