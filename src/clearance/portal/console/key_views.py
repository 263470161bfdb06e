"""API keys in the console: find them by person or organisation; scope one, revoke one or all.

GET  /keys?user=EMAIL|org=NAME&after=CURSOR   keys (never secrets): id, name, last four
                                              characters, owner (pseudonym), created, expiry,
                                              model scope, state; 50 a page, by id  viewer
POST /keys/{id}/revoke                        `reason`: the key stops working at once operator
POST /keys/{id}/scope                         `models` (comma-separated; blank: every model),
                                              `current` (the scope the page showed), `reason`
                                                                                    operator
POST /keys/revoke-org                         `org`, `count` (the keys the page showed as not
                                              revoked), `reason`: every key of the organisation's
                                              members, as a job                     operator
GET  /jobs/{id}                               the job's progress (reloads itself)   viewer

The lists are `principals.directory.list_keys`, as `clearance keys list` and the operator API's
GET /keys read them. Revoking one key is `principals.service.revoke_key`, recorded as the CLI
records it (`key.revoke` on the key) with the owner's pseudonym and the reason; a key revoked
since the page was rendered is 409. Scoping one is `principals.service.scope_key`, as `clearance
keys scope` makes it (`key.scope`, the models or null for every model, and the reason); a key
revoked or scoped otherwise since the page was rendered is 409. Revoking an organisation's keys
is a job (`jobs.key_revocation`: thousands of keys are not revoked inside a request), queued with a
`keys.revoke_org` entry whose index the progress page shows; each key then gets its own
`key.revoke` entry (why: key_revocation.py). A second request for the same organisation while
one runs is 409, and so is a request whose `count` no longer matches (keys were made or revoked
since the page was rendered: the operator confirms the number they will revoke).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from clearance.errors import Conflict, InvalidInput, NotFound
from clearance.jobs import key_revocation
from clearance.jobs import service as jobs
from clearance.jobs.models import JobKind, Progress
from clearance.portal.console.context import Console, FieldError, done_params, reason, text
from clearance.portal.operators import OPERATOR, VIEWER
from clearance.principals import directory
from clearance.principals import service as principals
from clearance.principals.directory import Page, PageRequest
from clearance.principals.models import ApiKey, Org
from clearance.store.tables import api_keys

PAGE = 50
MAX_MODEL_ID = 200


@dataclass(frozen=True, slots=True)
class Listed:
    found: Page[tuple[ApiKey, str]]
    org: Org | None
    unrevoked: int | None  # the organisation's keys not revoked (the mass action's count)
    running: int | None  # the job revoking them, if one is queued or running


def _cursor(request: Request) -> str | None:
    after = request.query_params.get("after") or None
    if after is not None and not (after.isascii() and after.isprintable() and len(after) <= 64):
        raise FieldError("after", "not a cursor from this list")
    return after


class KeyViews:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def page(self, request: Request) -> Response:
        signed = await self.console.require(request, VIEWER)
        user = request.query_params.get("user", "").strip()
        org_name = request.query_params.get("org", "").strip()
        if len(user) > 320:
            raise FieldError("user", "at most 320 characters")
        if len(org_name) > 200:
            raise FieldError("org", "at most 200 characters")
        if user and org_name:
            raise FieldError("org", "search by a person or by an organisation, not both")
        page = PageRequest(limit=PAGE, after=_cursor(request))

        def run(conn: Connection) -> Listed:
            org = None
            try:
                if org_name:
                    org = directory.get_org(conn, org_name)
                found = directory.list_keys(conn, page, user=user or None, org=org_name or None)
            except NotFound as exc:
                raise FieldError("org" if org_name else "user", exc.detail) from exc
            if org is None:
                return Listed(found, None, None, None)
            return Listed(
                found,
                org,
                directory.unrevoked_key_count(conn, org.id),
                key_revocation.running_for(conn, org.id),
            )

        listed = await self.console.portal.db(run)
        # A list of keys names their owners: a look at people, recorded like a people search.
        await self.console.record(signed, "key.list", "keys", {"count": len(listed.found.items)})
        index, action = done_params(request)
        return self.console.page(
            request,
            "keys.html",
            listed=listed,
            user=user,
            org=org_name,
            can_change=signed.can(OPERATOR),
            done=index,
            action=action,
        )

    async def revoke(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        why = reason(form)
        key_id: str = request.path_params["key"]
        back = text(form, "back", required=False, limit=600)

        def run(conn: Connection) -> str:
            row = conn.execute(
                sa.select(api_keys.c.user_id, api_keys.c.revoked_at).where(api_keys.c.id == key_id)
            ).first()
            if row is None:
                raise NotFound(f"no key {key_id!r}")
            if row.revoked_at is not None:
                raise Conflict(f"key {key_id} was revoked already (since you opened the page)")
            principals.revoke_key(conn, key_id)
            return principals.get_user_by_id(conn, int(row.user_id)).subject_id

        subject = await self.console.portal.db(run, write=True)
        index = await self.console.record(
            signed, "key.revoke", key_id, {"reason": why}, subject=subject
        )
        return RedirectResponse(_back(request, back, index, "revoke"), status_code=303)

    async def scope(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        wanted = _models(form, "models")
        shown = _models(form, "current")
        why = reason(form)
        key_id: str = request.path_params["key"]
        back = text(form, "back", required=False, limit=600)

        def run(conn: Connection) -> tuple[ApiKey, str]:
            row = conn.execute(
                sa.select(api_keys.c.user_id, api_keys.c.revoked_at, api_keys.c.models)
                .where(api_keys.c.id == key_id)
                .with_for_update()  # the check and the change on one version of the key
            ).first()
            if row is None:
                raise NotFound(f"no key {key_id!r}")
            if row.revoked_at is not None:
                raise Conflict(f"key {key_id} was revoked (since you opened the page)")
            if tuple(row.models or ()) != shown:
                raise Conflict(f"key {key_id}'s models were changed since you opened it: reload")
            try:
                principals.check_key_models(conn, wanted)
            except (InvalidInput, NotFound) as exc:
                raise FieldError("models", exc.detail) from exc
            if wanted == shown:
                raise FieldError("models", "the key already has this scope")
            key = principals.scope_key(conn, key_id, wanted)
            return key, principals.get_user_by_id(conn, int(row.user_id)).subject_id

        key, subject = await self.console.portal.db(run, write=True)
        details: dict[str, object] = {"models": list(key.models) or None, "reason": why}
        index = await self.console.record(signed, "key.scope", key_id, details, subject=subject)
        return RedirectResponse(_back(request, back, index, "scope"), status_code=303)

    async def revoke_org(self, request: Request) -> Response:
        signed = await self.console.require(request, OPERATOR)
        form = await self.console.form(request)
        name = text(form, "org", limit=200)
        count = text(form, "count", limit=12)
        if not (count.isascii() and count.isdigit()):
            raise FieldError("count", "the number of keys the page showed: reload it")
        why = reason(form)

        def run(conn: Connection) -> tuple[Org, int, int]:
            try:
                org = directory.get_org(conn, name)
            except NotFound as exc:
                raise FieldError("org", exc.detail) from exc
            job, total = key_revocation.enqueue(conn, org, reason=why, actor=signed.actor)
            if total != int(count):
                raise Conflict(
                    f"{org.name} has {total} keys not revoked, not {count} as the page showed: "
                    "reload it"
                )
            return org, job, total

        org, job, total = await self.console.portal.db(run, write=True)
        index = await self.console.record(
            signed,
            "keys.revoke_org",
            f"org:{org.id}",
            {"org": org.name, "reason": why, "job": job, "keys": total},
        )
        root = request.scope.get("root_path", "")
        location = f"{root}/jobs/{job}?done={index}&action=revoke_org"
        return RedirectResponse(location, status_code=303)

    async def job(self, request: Request) -> Response:
        await self.console.require(request, VIEWER)
        job_id: int = request.path_params["job"]

        def run(conn: Connection) -> Progress:
            found = jobs.progress(conn, job_id)
            if found.job.kind is not JobKind.REVOKE_ORG_KEYS:  # people's verifications: not here
                raise NotFound(f"no job {job_id}")
            return found

        progress = await self.console.portal.db(run)
        index, action = done_params(request)
        result = progress.job.result
        total, revoked = int(result.get("total", 0)), int(result.get("revoked", 0))
        return self.console.page(
            request,
            "job.html",
            progress=progress,
            total=total,
            revoked=revoked,
            closed=result.get("closed"),
            done=index,
            action=action,
        )


def _back(request: Request, back: str, index: int, action: str) -> str:
    """The list the change was made from (`user=` or `org=`), showing the change's entry."""
    root = request.scope.get("root_path", "")
    query = back if back.startswith(("user=", "org=")) and "&" not in back else ""
    return f"{root}/keys?{query + '&' if query else ''}done={index}&action={action}"


def _models(form: FormData, field: str) -> tuple[str, ...]:
    """Model ids, comma-separated, in order; blank: none (a key for every model)."""
    names = tuple(m.strip() for m in text(form, field, required=False).split(","))
    names = tuple(m for m in names if m)
    if any(len(m) > MAX_MODEL_ID for m in names):
        raise FieldError(field, f"model ids are at most {MAX_MODEL_ID} characters")
    return names
