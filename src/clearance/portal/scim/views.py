"""SCIM 2.0 over HTTP (RFC 7644), mounted at /scim/v2, for the provider's identity provider.

GET                      /ServiceProviderConfig, /ResourceTypes[/NAME], /Schemas[/URN]   (§4)
GET, POST                /Users, /Groups   list (filter, startIndex, count: §3.4.2), create (§3.3)
GET, PUT, PATCH, DELETE  /Users/ID, /Groups/ID             (§3.4.1, §3.5.1, §3.5.2, §3.6)

Every request carries `Authorization: Bearer TOKEN` (§2, RFC 6750); the token's SHA-256 is
compared in constant time with each digest in `[scim] token_sha256`, so the configuration holds
no secret. Bodies and answers are `application/scim+json` (§3.1), validated and written by
scim2-models; filters are parsed by its RFC 7644 §3.4.2.2 grammar and evaluated on each resource
(a provider's operators number in the hundreds, not millions). Every error is a SCIM Error
(§3.12): `status` as a string, `scimType` where Table 9 names one, `detail`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    Error,
    ETag,
    Filter,
    Group,
    ListResponse,
    Patch,
    PatchOp,
    Resource,
    ResourceType,
    Schema,
    SCIMException,
    ScimFilter,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
    User,
)
from sqlalchemy.engine import Connection, Engine
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clearance.audit.service import AuditLog
from clearance.errors import (
    AuthenticationError,
    ClearanceError,
    Conflict,
    InvalidInput,
    NotFound,
)
from clearance.portal.provisioning import GroupRoles
from clearance.portal.scim import service
from clearance.portal.scim.service import Scope

T = TypeVar("T")
MEDIA = "application/scim+json"
MAX_BODY = 1024 * 1024
MAX_RESULTS = 200
SCHEMA_URN = "urn:ietf:params:scim:schemas:core:2.0:"


class ScimInvalid(InvalidInput):
    """A request RFC 7644 §3.12 Table 9 names the fault of (`scim_type`)."""

    def __init__(self, detail: str, scim_type: str) -> None:
        super().__init__(detail)
        self.scim_type = scim_type


def config() -> ServiceProviderConfig:
    """What this service supports (RFC 7643 §5)."""
    return ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="A token whose SHA-256 is in [scim] token_sha256 (RFC 6750)",
                primary=True,
            )
        ],
    )


class ScimViews:
    def __init__(
        self, engine: Engine, audit: AuditLog, digests: tuple[str, ...], groups: GroupRoles
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.digests = digests
        self.groups = groups

    # -- plumbing --------------------------------------------------------------------------------

    def _scope(self, request: Request) -> Scope:
        """The caller, authenticated: RFC 7644 §2 bearer token, compared as digests."""
        if not self.digests:
            raise NotFound("SCIM is not configured here ([scim] token_sha256)")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = hashlib.sha256(token.strip().encode()).hexdigest()
        matched = None
        for digest in self.digests:  # every digest compared: the time says nothing of which
            if hmac.compare_digest(given, digest) and scheme.lower() == "bearer" and token:
                matched = digest
        if matched is None:
            raise AuthenticationError("a valid SCIM bearer token is required")
        base = str(request.base_url).rstrip("/")  # the mount's root path included
        return Scope(actor=f"scim:{matched[:12]}", groups=self.groups, base=base)

    async def _db(self, work: Callable[[Connection], T], *, write: bool = False) -> T:
        def run() -> T:
            if write:
                with self.engine.begin() as conn:
                    return work(conn)
            with self.engine.connect() as conn:
                return work(conn)

        return await asyncio.to_thread(run)

    async def _record(self, entries: list[bytes]) -> None:
        for entry in entries:
            await self.audit.append_async(entry)

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise ScimInvalid("the request body is over 1 MiB", "tooMany")
        try:
            body = json.loads(raw)
        except ValueError:
            raise ScimInvalid("the request body is not JSON", "invalidSyntax") from None
        if not isinstance(body, dict):
            raise ScimInvalid("the request body is not a JSON object", "invalidSyntax")
        return body

    @staticmethod
    def _parse(model: Any, body: dict[str, Any], ctx: Context) -> Any:
        try:
            return model.model_validate(body, scim_ctx=ctx)
        except ValidationError as exc:
            first = Error.from_validation_errors(exc)[0]
            raise ScimInvalid(
                first.detail or "invalid", first.scim_type or "invalidValue"
            ) from None

    @staticmethod
    def answer(resource: Resource[Any], status: int = 200, **headers: str) -> Response:
        body = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        if resource.meta is not None and resource.meta.version:
            headers["etag"] = resource.meta.version
        if status == 201 and resource.meta is not None and resource.meta.location:
            headers["location"] = str(resource.meta.location)
        return JSONResponse(body, status_code=status, media_type=MEDIA, headers=headers)

    # -- discovery (RFC 7644 §4) -------------------------------------------------------------------

    async def service_provider_config(self, request: Request) -> Response:
        self._scope(request)
        body = config().model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        return JSONResponse(body, media_type=MEDIA)

    async def resource_types(self, request: Request) -> Response:
        self._scope(request)
        types = [ResourceType.from_resource(User), ResourceType.from_resource(Group)]
        wanted = request.path_params.get("name")
        if wanted is not None:
            found = [t for t in types if t.id == wanted]
            if not found:
                raise NotFound(f"no resource type {wanted!r}")
            return JSONResponse(
                found[0].model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE), media_type=MEDIA
            )
        listing = ListResponse[ResourceType](
            total_results=len(types), start_index=1, items_per_page=len(types), resources=types
        )
        return JSONResponse(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE), media_type=MEDIA)

    async def schemas(self, request: Request) -> Response:
        self._scope(request)
        schemas = [User.to_schema(), Group.to_schema()]
        wanted = request.path_params.get("urn")
        if wanted is not None:
            found = [s for s in schemas if s.id == wanted]
            if not found:
                raise NotFound(f"no schema {wanted!r}")
            return JSONResponse(
                found[0].model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE), media_type=MEDIA
            )
        listing = ListResponse[Schema](
            total_results=len(schemas),
            start_index=1,
            items_per_page=len(schemas),
            resources=schemas,
        )
        return JSONResponse(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE), media_type=MEDIA)

    # -- Users and Groups -------------------------------------------------------------------------

    async def list(self, request: Request) -> Response:
        scope = self._scope(request)
        model: Any = User if request.url.path.endswith("/Users") else Group
        search = _search(request)
        matcher = None
        if search.filter is not None:
            matcher = ScimFilter[model](str(search.filter))  # InvalidFilterException: 400
        lister = service.list_users if model is User else service.list_groups
        everything = await self._db(lambda c: lister(c, scope))
        found = [r for r in everything if matcher is None or matcher.match(r)]
        start = max(search.start_index or 1, 1)  # §3.4.2.4: less than 1 is 1
        count = MAX_RESULTS if search.count is None else min(max(search.count, 0), MAX_RESULTS)
        page = found[start - 1 : start - 1 + count]
        listing = ListResponse[model](
            total_results=len(found),
            start_index=start,
            items_per_page=len(page),
            resources=page or None,
        )
        body = listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=search)
        return JSONResponse(body, media_type=MEDIA)

    async def get(self, request: Request) -> Response:
        scope, key = self._scope(request), request.path_params["id"]
        if request.url.path.split("/")[-2] == "Users":
            return self.answer(await self._db(lambda c: service.get_user_resource(c, key, scope)))
        return self.answer(await self._db(lambda c: service.get_group_resource(c, key, scope)))

    async def create(self, request: Request) -> Response:
        scope, body = self._scope(request), await self._body(request)
        created: Resource[Any]
        if request.url.path.endswith("/Users"):
            user = self._parse(User, body, Context.RESOURCE_CREATION_REQUEST)
            created, entries = await self._db(
                lambda c: service.create_user(c, user, scope), write=True
            )
        else:
            group = self._parse(Group, body, Context.RESOURCE_CREATION_REQUEST)
            created, entries = await self._db(
                lambda c: service.create_group(c, group, scope), write=True
            )
        await self._record(entries)
        return self.answer(created, 201)

    async def replace(self, request: Request) -> Response:
        scope, body = self._scope(request), await self._body(request)
        key, if_match = request.path_params["id"], request.headers.get("if-match")
        replaced: Resource[Any]
        if request.url.path.split("/")[-2] == "Users":
            user = self._parse(User, body, Context.RESOURCE_REPLACEMENT_REQUEST)
            replaced, entries = await self._db(
                lambda c: service.replace_user(c, key, user, scope, if_match=if_match), write=True
            )
        else:
            group = self._parse(Group, body, Context.RESOURCE_REPLACEMENT_REQUEST)
            replaced, entries = await self._db(
                lambda c: service.replace_group(c, key, group, scope, if_match=if_match),
                write=True,
            )
        await self._record(entries)
        return self.answer(replaced)

    async def patch(self, request: Request) -> Response:
        """§3.5.2: the operations applied (by scim2-models) to the stored resource, the result
        stored as a PUT would, in one transaction."""
        scope, body = self._scope(request), await self._body(request)
        key, if_match = request.path_params["id"], request.headers.get("if-match")
        users = request.url.path.split("/")[-2] == "Users"
        model: Any = PatchOp[User] if users else PatchOp[Group]  # type: ignore[type-arg]
        operations = self._parse(model, body, Context.RESOURCE_PATCH_REQUEST)

        def apply(conn: Connection) -> tuple[Resource[Any], list[bytes]]:
            if users:
                user = service.get_user_resource(conn, key, scope)
                operations.patch(user)
                return service.replace_user(conn, key, user, scope, if_match=if_match)
            group = service.get_group_resource(conn, key, scope)
            operations.patch(group)
            return service.replace_group(conn, key, group, scope, if_match=if_match)

        patched, entries = await self._db(apply, write=True)
        await self._record(entries)
        return self.answer(patched)

    async def delete(self, request: Request) -> Response:
        scope = self._scope(request)
        key, if_match = request.path_params["id"], request.headers.get("if-match")
        if request.url.path.split("/")[-2] == "Users":
            entries = await self._db(
                lambda c: service.delete_user(c, key, scope, if_match=if_match), write=True
            )
        else:
            entries = await self._db(
                lambda c: service.delete_group(c, key, scope, if_match=if_match), write=True
            )
        await self._record(entries)
        return Response(status_code=204)


def _search(request: Request) -> SearchRequest[Any]:
    """The query parameters of §3.4.2 as scim2-models' SearchRequest."""
    params = request.query_params
    raw: dict[str, Any] = {}
    for name in ("filter", "sortBy", "sortOrder"):
        if name in params:
            raw[name] = params[name]
    for name in ("attributes", "excludedAttributes"):
        if name in params:
            raw[name] = [a.strip() for a in params[name].split(",") if a.strip()]
    for name in ("startIndex", "count"):
        if name in params:
            try:
                raw[name] = int(params[name])
            except ValueError:
                raise ScimInvalid(f"{name} must be an integer", "invalidValue") from None
    if "sortBy" in raw:
        raise ScimInvalid("sorting is not supported (ServiceProviderConfig sort)", "invalidValue")
    try:
        return SearchRequest.model_validate(raw, scim_ctx=Context.SEARCH_REQUEST)
    except ValidationError as exc:
        first = Error.from_validation_errors(exc)[0]
        raise ScimInvalid(first.detail or "invalid", first.scim_type or "invalidValue") from None


def error_response(_request: Request, exc: Exception) -> Response:
    """Any failure as an RFC 7644 §3.12 Error."""
    headers: dict[str, str] = {}
    if isinstance(exc, SCIMException):  # scim2-models: an invalid filter, path or value
        error = exc.to_error()
    elif isinstance(exc, HTTPException):  # routing: unknown path or method
        error = Error(status=exc.status_code, detail=str(exc.detail))
    else:
        assert isinstance(exc, ClearanceError)
        scim_type = getattr(exc, "scim_type", None)
        if scim_type is None and isinstance(exc, InvalidInput):
            scim_type = "invalidValue"
        if isinstance(exc, service.Uniqueness):
            scim_type = "uniqueness"
        elif isinstance(exc, Conflict) and exc.status == 409:
            scim_type = "uniqueness"
        if isinstance(exc, AuthenticationError):
            headers["www-authenticate"] = 'Bearer realm="scim"'
        error = Error(status=exc.status, scim_type=scim_type, detail=exc.detail)
    body = error.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return JSONResponse(body, status_code=error.status or 500, media_type=MEDIA, headers=headers)
