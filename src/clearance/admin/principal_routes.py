"""The operator API's people, organisations, keys and licences (mounted at /admin/api); each
change is an audit entry naming the token, answered with the CLI's `--json` shape
(principals/views.py) and that entry's `audit_index`. People are named by pseudonym in URLs.

GET  /users?org&limit&offset&after                      principals:read  (audited)
POST /users/search  {"text", "org"?, "limit"?, "offset"?, "after"?}   principals:read (audited)
POST /users/{subject}/suspend    {"reason"}              principals:write
POST /users/{subject}/reinstate  {"reason"}              principals:write
GET  /orgs?limit&offset&after                            principals:read
GET  /orgs/{org}                                         principals:read (audited)
GET  /orgs/{org}/members?limit&offset&after              principals:read (audited)
POST /orgs/{org}/update  {"name"?, "country"?}           principals:write (screened again)
GET  /keys?user&org&limit&offset&after                   principals:read
GET  /licences?org&limit&offset&after                    principals:read
GET  /licences/{licence}                                 principals:read
POST /licences/{licence}/revoke  {"reason"}              principals:write
POST /licences/{licence}/expire                          principals:write
POST /licences/{licence}/renew   {"until": "YYYY-MM-DD"} principals:write
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearance.admin.tokens import AdminToken, Scope
from clearance.errors import InvalidInput, NotFound
from clearance.principals import directory, licences, views
from clearance.principals import service as principals
from clearance.principals.directory import PageRequest
from clearance.principals.licences import HeldLicence
from clearance.principals.models import user_json
from clearance.screening.service import screen_org
from clearance.store import reading

if TYPE_CHECKING:
    from clearance.admin.routes import AdminApi

BodyReader = Callable[[Request], Awaitable[dict[str, Any]]]
_QUERY = {"org", "user", "limit", "offset", "after"}


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 2000:
        raise InvalidInput(f"{name!r} must be a non-empty string of at most 2000 characters")
    return value.strip()


def _number(value: object, name: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        raise InvalidInput(f"{name!r} must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    raise InvalidInput(f"{name!r} must be a whole number")


def _page(source: dict[str, Any]) -> PageRequest:
    after = source.get("after")
    if after is not None and not isinstance(after, str):
        raise InvalidInput("'after' must be a cursor string")
    return PageRequest(
        _number(source.get("limit"), "limit", 50), _number(source.get("offset"), "offset", 0), after
    )


def _query(request: Request) -> dict[str, Any]:
    params = request.query_params
    unknown = set(params) - _QUERY
    if unknown:
        raise InvalidInput(f"unknown query parameter {sorted(unknown)[0]!r}")
    return {k: params[k] for k in params}


def _licence_id(request: Request) -> int:
    value = request.path_params["licence"]
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise NotFound("no such licence")
    return int(value)


class PrincipalRoutes:
    def __init__(self, api: AdminApi, read_body: BodyReader) -> None:
        self.api = api
        self.read_body = read_body

    def routes(self) -> list[Route]:
        r, read, write = self.api.route, Scope.PRINCIPALS_READ, Scope.PRINCIPALS_WRITE
        return [
            r("/users", read, self.users, "GET"),
            r("/users/search", read, self.search, "POST"),
            r("/users/{subject}/suspend", write, self.suspend, "POST"),
            r("/users/{subject}/reinstate", write, self.reinstate, "POST"),
            r("/orgs", read, self.orgs, "GET"),
            r("/orgs/{org}", read, self.org, "GET"),
            r("/orgs/{org}/members", read, self.members, "GET"),
            r("/orgs/{org}/update", write, self.update_org, "POST"),
            r("/keys", read, self.keys, "GET"),
            r("/licences", read, self.licences, "GET"),
            r("/licences/{licence}", read, self.licence, "GET"),
            r("/licences/{licence}/revoke", write, self.revoke_licence, "POST"),
            r("/licences/{licence}/expire", write, self.expire_licence, "POST"),
            r("/licences/{licence}/renew", write, self.renew_licence, "POST"),
        ]

    async def _run(self, work: Callable[[], dict[str, object]]) -> Response:
        return JSONResponse(await run_in_threadpool(work))

    # -- people ---------------------------------------------------------------------------

    def _list_users(
        self, token: AdminToken, page: PageRequest, search: str | None, org: str | None
    ) -> dict[str, object]:
        with reading(self.api.engine) as conn:
            data = views.users_json(directory.list_users(conn, page, search=search, org=org))
        # A list of people is a look at their records: who looked and how many, never whom.
        self.api.record(token, "user.list", "users", {"count": len(data["users"])})  # type: ignore[arg-type]
        return data

    async def users(self, request: Request, token: AdminToken) -> Response:
        query = _query(request)
        page = _page(query)
        return await self._run(lambda: self._list_users(token, page, None, query.get("org")))

    async def search(self, request: Request, token: AdminToken) -> Response:
        body = await self.read_body(request)
        text, org, page = _text(body, "text"), _text(body, "org", required=False), _page(body)
        return await self._run(lambda: self._list_users(token, page, text, org))

    async def suspend(self, request: Request, token: AdminToken) -> Response:
        return await self._suspension(request, token, "user.suspend", directory.suspend_user)

    async def reinstate(self, request: Request, token: AdminToken) -> Response:
        return await self._suspension(request, token, "user.reinstate", directory.reinstate_user)

    async def _suspension(
        self, request: Request, token: AdminToken, action: str, change: Any
    ) -> Response:
        reason = _text(await self.read_body(request), "reason")
        subject = request.path_params["subject"]

        def run() -> dict[str, object]:
            with self.api.engine.begin() as conn:
                email = principals.get_user_by_subject(conn, subject).email
                user = change(conn, email, reason)
            index = self.api.record(
                token, action, user.subject_id, {"reason": reason}, subject=user.subject_id
            )
            return {**user_json(user), "audit_index": index}

        return await self._run(run)

    # -- organisations --------------------------------------------------------------------

    async def orgs(self, request: Request, _token: AdminToken) -> Response:
        page = _page(_query(request))

        def run() -> dict[str, object]:
            with reading(self.api.engine) as conn:
                found = directory.list_orgs(conn, page)
                return views.page_json(
                    "orgs", found, lambda o: views.org_json(o, directory.member_count(conn, o.id))
                )

        return await self._run(run)

    async def org(self, request: Request, token: AdminToken) -> Response:
        name = request.path_params["org"]

        def run() -> dict[str, object]:
            with reading(self.api.engine) as conn:
                data = views.org_detail_json(*directory.org_detail(conn, name))
            self.api.record(token, "org.view", f"org:{data['id']}", {})
            return data

        return await self._run(run)

    async def members(self, request: Request, token: AdminToken) -> Response:
        page, name = _page(_query(request)), request.path_params["org"]

        def run() -> dict[str, object]:
            with reading(self.api.engine) as conn:
                org = directory.get_org(conn, name)
                data = views.users_json(directory.members(conn, name, page))
            self.api.record(token, "org.members", f"org:{org.id}", {})
            return data

        return await self._run(run)

    async def update_org(self, request: Request, token: AdminToken) -> Response:
        body, name = await self.read_body(request), request.path_params["org"]
        new_name = _text(body, "name", required=False)
        new_country = _text(body, "country", required=False)

        def run() -> dict[str, object]:
            outbox: list[bytes] = []
            with self.api.engine.begin() as conn:
                org, changes = directory.update_org(
                    conn, name, new_name=new_name, new_country=new_country
                )
                screen_org(conn, org.id, outbox=outbox)
                org = directory.get_org(conn, org.name)  # with the new screening status
                count = directory.member_count(conn, org.id)
            index = self.api.record(token, "org.update", f"org:{org.id}", changes)
            for entry in outbox:
                self.api.audit.append(entry)
            return {**views.org_json(org, count), "audit_index": index}

        return await self._run(run)

    # -- keys -----------------------------------------------------------------------------

    async def keys(self, request: Request, _token: AdminToken) -> Response:
        query = _query(request)
        page = _page(query)

        def run() -> dict[str, object]:
            with reading(self.api.engine) as conn:
                email = None
                if query.get("user") is not None:
                    email = principals.get_user_by_subject(conn, query["user"]).email
                found = directory.list_keys(conn, page, user=email, org=query.get("org"))
            return views.page_json("keys", found, views.key_json)

        return await self._run(run)

    # -- licences -------------------------------------------------------------------------

    async def licences(self, request: Request, _token: AdminToken) -> Response:
        query = _query(request)
        page = _page(query)

        def run() -> dict[str, object]:
            with reading(self.api.engine) as conn:
                found = licences.list_licences(conn, page, org=query.get("org"))
            return views.page_json("licences", found, views.licence_json)

        return await self._run(run)

    async def licence(self, request: Request, _token: AdminToken) -> Response:
        licence_id = _licence_id(request)

        def run() -> dict[str, object]:
            with reading(self.api.engine) as conn:
                return views.licence_json(licences.get_licence(conn, licence_id))

        return await self._run(run)

    def _licence_change(
        self,
        token: AdminToken,
        action: str,
        change: Callable[[Any], HeldLicence],
        **details: object,
    ) -> dict[str, object]:
        with self.api.engine.begin() as conn:
            held = change(conn)
        lic = held.licence
        index = self.api.record(
            token,
            action,
            f"org:{lic.org_id}",
            {"licence_id": lic.id, "number": lic.number, **details},
        )
        return {**views.licence_json(held), "audit_index": index}

    async def revoke_licence(self, request: Request, token: AdminToken) -> Response:
        licence_id = _licence_id(request)
        reason = _text(await self.read_body(request), "reason")
        assert reason is not None
        return await self._run(
            lambda: self._licence_change(
                token,
                "licence.revoke",
                lambda c: licences.revoke(c, licence_id, reason),
                reason=reason,
            )
        )

    async def expire_licence(self, request: Request, token: AdminToken) -> Response:
        licence_id = _licence_id(request)
        return await self._run(
            lambda: self._licence_change(
                token, "licence.expire", lambda c: licences.expire(c, licence_id)
            )
        )

    async def renew_licence(self, request: Request, token: AdminToken) -> Response:
        licence_id = _licence_id(request)
        until_text = _text(await self.read_body(request), "until")
        assert until_text is not None
        try:
            until = date.fromisoformat(until_text)
        except ValueError:
            raise InvalidInput(f"'until' must be YYYY-MM-DD, not {until_text!r}") from None
        return await self._run(
            lambda: self._licence_change(
                token,
                "licence.renew",
                lambda c: licences.renew(c, licence_id, until),
                expires=until.isoformat(),
            )
        )
