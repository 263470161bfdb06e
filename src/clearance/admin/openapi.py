"""The operator API's part of the gateway's OpenAPI 3.1 document (paths under /admin/api)."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_JSON = "application/json"
_TEXT = {"type": "string", "minLength": 1, "maxLength": 2000}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_PATH_TEXT = {"type": "string", "minLength": 1, "maxLength": 200}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


def admin_schemas() -> dict[str, Schema]:
    model = _catalog_model()
    case = _object(
        ["case", "subject", "method", "created", "audit_index"],
        case={"type": "integer"},
        subject={"type": "string"},
        method={"type": "string"},
        created={"type": "string"},
        decided_by=_NULLABLE_TEXT,
        audit_index={"type": ["integer", "null"]},
        status={"enum": ["verified", "rejected", "review"]},
        reasons={"type": "array", "items": {"type": "string"}},
    )
    return {
        "AdminError": _object(
            ["error"],
            error=_object(["code", "message"], code={"type": "string"}, message={"type": "string"}),
        ),
        "AdminToken": _object(
            ["id", "name", "scopes", "expires_at"],
            id={"type": "string"},
            name={"type": "string"},
            scopes={"type": "array", "items": {"type": "string"}},
            expires_at=_NULLABLE_TEXT,
        ),
        "AdminModel": model,
        "AdminModels": _object(["models"], models={"type": "array", "items": model}),
        "AdminUser": _object(
            ["email", "subject_id", "screening", "identity", "keys", "screening_hits"],
            email={"type": "string"},
            subject_id={"type": "string"},
            screening={"type": "string"},
            identity={"type": ["object", "null"]},
            keys={"type": "array", "items": {"type": "object"}},
            screening_hits={"type": "array", "items": {"type": "object"}},
        ),
        "AdminKeyRevoked": _object(
            ["key", "revoked", "audit_index"],
            key={"type": "string"},
            revoked={"const": True},
            audit_index={"type": "integer"},
        ),
        "AdminScreening": _object(
            ["subject", "screening"], subject={"type": "string"}, screening={"type": "string"}
        ),
        "AdminCase": case,
        "AdminCases": _object(["cases"], cases={"type": "array", "items": case}),
        **_catalog_schemas(),
        **_principal_schemas(),
        **_guard_schemas(),
    }


def _operation(
    method: str,
    summary: str,
    ok: str,
    statuses: dict[str, str],
    *,
    params: tuple[str, ...] = (),
    body: Schema | None = None,
) -> Schema:
    errors = {
        "401": "No admin token, or not a valid one (`WWW-Authenticate: Bearer`)",
        "403": "The token lacks this route's scope (`insufficient_scope`)",
        "404": "Unknown path or record",
        "405": "Method not allowed on this path",
        "503": "The audit log could not record the action: nothing was done",
        **statuses,
    }
    operation: Schema = {
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": [
            {"name": p, "in": "path", "required": True, "schema": _PATH_TEXT} for p in params
        ],
        "responses": {
            "200": {"description": "OK", "content": {_JSON: {"schema": _ref(ok)}}},
            **{
                code: {
                    "description": text,
                    "content": {_JSON: {"schema": _ref("AdminError")}},
                }
                for code, text in errors.items()
            },
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {_JSON: {"schema": body}}}
    return {method: operation}


def admin_paths() -> dict[str, Schema]:
    bad = {"400": "Malformed body", "413": "Body over 64 KiB"}
    return {
        "/admin/api/whoami": _operation(
            "get", "This token's id, name and scopes", "AdminToken", {}
        ),
        "/admin/api/models": _operation("get", "The catalog (catalog:read)", "AdminModels", {}),
        "/admin/api/models/{model}/suspend": _operation(
            "post",
            "Suspend a model everywhere: the kill switch (catalog:write)",
            "AdminModel",
            bad,
            params=("model",),
            body=_object(["reason"], reason=_TEXT),
        ),
        "/admin/api/models/{model}/resume": _operation(
            "post", "Resume a suspended model (catalog:write)", "AdminModel", {}, params=("model",)
        ),
        "/admin/api/users/lookup": _operation(
            "post",
            "A person's record by email, kept out of the URL (principals:read; audited)",
            "AdminUser",
            bad,
            body=_object(["email"], email=_TEXT),
        ),
        "/admin/api/users/{subject}": _operation(
            "get",
            "A person's record by pseudonym (principals:read; audited)",
            "AdminUser",
            {},
            params=("subject",),
        ),
        "/admin/api/users/{subject}/keys/{key}/revoke": _operation(
            "post",
            "Revoke one of a person's API keys (principals:write)",
            "AdminKeyRevoked",
            {},
            params=("subject", "key"),
        ),
        "/admin/api/users/{subject}/screening/resolve": _operation(
            "post",
            "Resolve a restricted-party hit (screening:write)",
            "AdminScreening",
            bad,
            params=("subject",),
            body=_object(
                ["list", "entry_id", "resolution", "reason"],
                list=_TEXT,
                entry_id=_TEXT,
                resolution={"enum": ["false_positive", "true_match"]},
                reason=_TEXT,
            ),
        ),
        "/admin/api/review": _operation(
            "get", "Identity cases awaiting review (review:read)", "AdminCases", {}
        ),
        "/admin/api/review/{case}": _operation(
            "get", "One case, without its images (review:read)", "AdminCase", {}, params=("case",)
        ),
        "/admin/api/review/{case}/decide": _operation(
            "post",
            "Decide a case (review:write)",
            "AdminCase",
            {**bad, "409": "The case is not awaiting review"},
            params=("case",),
            body=_object(
                ["outcome", "note"], outcome={"enum": ["verified", "rejected"]}, note=_TEXT
            ),
        ),
        **_catalog_paths(bad),
        **_principal_paths(bad),
        **_guard_paths(bad),
    }


# -- the catalog: upstreams and models (admin/catalog_routes.py) -------------------------------

_CLASSIFICATION = {"enum": ["controlled", "uncontrolled"]}
_KIND = {"enum": ["openai", "anthropic"]}


def _strict(required: list[str], **properties: Schema) -> Schema:
    return {**_object(required, **properties), "additionalProperties": False}


def _catalog_model() -> Schema:
    """One model, as `clearance models list --json` prints it (catalog.models.model_json)."""
    names = ["id", "upstream", "upstream_model", "classification", "controlled"]
    names += ["classification_source", "explicit", "rationale", "evidence", "training_compute"]
    names += ["status", "suspended_reason", "retired_reason", "retired_at", "fallbacks"]
    return _object(
        names,
        id={"type": "string"},
        upstream={"type": "string"},
        upstream_model={"type": "string"},
        classification=_CLASSIFICATION,
        controlled={"type": "boolean"},
        classification_source={"enum": ["explicit", "training_compute"]},
        explicit={"type": "boolean"},
        rationale={"type": "string"},
        evidence=_NULLABLE_TEXT,
        training_compute={"type": ["number", "null"]},
        status={"enum": ["active", "suspended", "restoring", "retired"]},
        suspended_reason=_NULLABLE_TEXT,
        retired_reason=_NULLABLE_TEXT,
        retired_at=_NULLABLE_TEXT,
        fallbacks={"type": "array", "items": {"type": "string"}},
        unlinked_from={"type": "array", "items": {"type": "string"}},
        input_price=_NULLABLE_TEXT,  # per million tokens, as a decimal string
        output_price=_NULLABLE_TEXT,
        audit_index={"type": "integer", "minimum": 0},
        restore={  # the phased-restore cohort (catalog/restore.py); null when not restoring
            "type": ["object", "null"],
            "required": ["percent", "orgs", "internal"],
            "properties": {
                "percent": {"type": "integer", "minimum": 0, "maximum": 99},
                "orgs": {"type": "array", "items": {"type": "string"}},
                "internal": {"type": "boolean"},
            },
        },
    )


def _catalog_schemas() -> dict[str, Schema]:
    upstream = _object(
        ["name", "kind", "base_url", "api_key_env"],
        name={"type": "string"},
        kind=_KIND,
        base_url={"type": "string"},
        api_key_env=_NULLABLE_TEXT,
        audit_index={"type": "integer", "minimum": 0},
    )
    return {
        "AdminUpstream": upstream,
        "AdminUpstreams": _object(["upstreams"], upstreams={"type": "array", "items": upstream}),
        "AdminUpstreamRemoved": _object(
            ["name", "removed", "audit_index"],
            name={"type": "string"},
            removed={"const": True},
            audit_index={"type": "integer", "minimum": 0},
        ),
    }


def _catalog_paths(bad: dict[str, str]) -> dict[str, Schema]:
    retired = {"409": "The model is retired: it cannot be changed"}
    return {
        "/admin/api/upstreams": _operation(
            "get", "Every upstream (catalog:read)", "AdminUpstreams", {}
        ),
        "/admin/api/upstreams/{upstream}/update": _operation(
            "post",
            "Change an upstream's kind, base URL or key variable; null clears it (catalog:write)",
            "AdminUpstream",
            bad,
            params=("upstream",),
            body=_strict(
                [],
                kind=_KIND,
                base_url=_TEXT,
                api_key_env={"type": ["string", "null"], "minLength": 1, "maxLength": 2000},
            ),
        ),
        "/admin/api/upstreams/{upstream}/remove": _operation(
            "post",
            "Remove an upstream no model uses (catalog:write)",
            "AdminUpstreamRemoved",
            {"409": "Models still use the upstream: they are named"},
            params=("upstream",),
        ),
        "/admin/api/models/{model}/update": _operation(
            "post",
            "Change a model's fallbacks (acyclic, existing, not retired), upstream or prices "
            "(catalog:write)",
            "AdminModel",
            {**bad, "409": "A fallback cycle, a retired target, or the model is retired"},
            params=("model",),
            body=_strict(
                [],
                fallbacks={
                    "type": "array",
                    "maxItems": 32,
                    "items": {"type": "string", "minLength": 1, "maxLength": 200},
                },
                upstream=_TEXT,
                upstream_model=_TEXT,
                # Per million tokens, for spend budgets; null or "" unprices the model.
                input_price={"type": ["string", "number", "null"]},
                output_price={"type": ["string", "number", "null"]},
            ),
        ),
        "/admin/api/models/{model}/reclassify": _operation(
            "post",
            "An explicit classification decision, with its rationale and evidence (catalog:write)",
            "AdminModel",
            {**bad, **retired},
            params=("model",),
            body=_strict(
                ["classification", "rationale"],
                classification=_CLASSIFICATION,
                rationale=_TEXT,
                evidence=_TEXT,
            ),
        ),
        "/admin/api/models/{model}/retire": _operation(
            "post",
            "Retire a model for good: refused to everyone, never a fallback (catalog:write)",
            "AdminModel",
            {**bad, "409": "The model is already retired"},
            params=("model",),
            body=_strict(["reason"], reason=_TEXT),
        ),
        "/admin/api/models/{model}/restore": _operation(
            "post",
            "Lift a suspension for everyone, or one phased-restore step to a cohort: a stable "
            "percentage of people, organisations' members, or internal users (catalog:write)",
            "AdminModel",
            {**bad, "409": "Not suspended or restoring, a narrowing step, or the model is retired"},
            params=("model",),
            body=_strict(
                [],
                percent={"type": "integer", "minimum": 1, "maximum": 100},
                orgs={
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 100,
                    "items": {"type": "string", "minLength": 1, "maxLength": 200},
                },
                internal={"type": "boolean"},
                reason=_TEXT,
            ),
        ),
    }


# -- people, organisations, keys, licences (admin/principal_routes.py) ------------------------

_NULLABLE_DATE_TIME = {"type": ["string", "null"]}
_PAGE_PARAMS = ("limit", "offset", "after")


def _query_params(*names: str) -> list[Schema]:
    schemas: dict[str, Schema] = {
        "limit": {"type": "integer", "minimum": 1, "maximum": 500},
        "offset": {"type": "integer", "minimum": 0},
        "after": {"type": "string", "minLength": 1, "maxLength": 64},
        "org": _PATH_TEXT,
        "user": _PATH_TEXT,
    }
    return [{"name": n, "in": "query", "required": False, "schema": schemas[n]} for n in names]


def _with_query(operation: Schema, *names: str) -> Schema:
    ((method, body),) = operation.items()
    return {method: {**body, "parameters": [*body["parameters"], *_query_params(*names)]}}


def _page_of(name: str, item: Schema) -> Schema:
    properties: dict[str, Schema] = {name: {"type": "array", "items": item}}
    properties["next"] = _NULLABLE_TEXT
    return _object([name, "next"], **properties)


def _principal_items() -> dict[str, Schema]:
    user = _object(
        [
            "email",
            "subject_id",
            "name",
            "org",
            "residence",
            "screening",
            "org_screening",
            "status",
            "suspended_at",
            "suspended_reason",
            "identity",
        ],
        email={"type": "string"},
        subject_id={"type": "string"},
        name=_NULLABLE_TEXT,
        org=_NULLABLE_TEXT,
        residence=_NULLABLE_TEXT,
        screening={"type": "string"},
        org_screening={"type": "string"},
        status={"enum": ["active", "suspended"]},
        suspended_at=_NULLABLE_DATE_TIME,
        suspended_reason=_NULLABLE_TEXT,
        identity={"type": ["object", "null"]},
        audit_index={"type": "integer", "minimum": 0},
    )
    org = _object(
        ["id", "name", "country", "screening", "members"],
        id={"type": "integer"},
        name={"type": "string"},
        country=_NULLABLE_TEXT,
        screening={"type": "string"},
        members={"type": "integer", "minimum": 0},
        audit_index={"type": "integer", "minimum": 0},
    )
    key = _object(
        [
            "id",
            "name",
            "hint",
            "owner",
            "allow_fallback",
            "created_at",
            "expires_at",
            "revoked_at",
            "status",
        ],
        id={"type": "string"},
        name=_NULLABLE_TEXT,
        hint={"type": "string"},
        owner={"type": "string"},
        allow_fallback={"type": "boolean"},
        created_at={"type": "string"},
        expires_at=_NULLABLE_DATE_TIME,
        revoked_at=_NULLABLE_DATE_TIME,
        status={"enum": ["active", "expired", "revoked"]},
    )
    licence = _object(
        [
            "id",
            "number",
            "authority",
            "org",
            "models",
            "nationalities",
            "expires",
            "status",
            "revoked_at",
            "revoked_reason",
        ],
        id={"type": "integer"},
        number={"type": "string"},
        authority={"type": "string"},
        org={"type": "string"},
        models={"type": "array", "items": {"type": "string"}},
        nationalities={"type": "array", "items": {"type": "string"}},
        expires={"type": "string"},
        status={"enum": ["active", "expired", "revoked"]},
        revoked_at=_NULLABLE_DATE_TIME,
        revoked_reason=_NULLABLE_TEXT,
        audit_index={"type": "integer", "minimum": 0},
    )
    return {"user": user, "org": org, "key": key, "licence": licence}


def _principal_schemas() -> dict[str, Schema]:
    items = _principal_items()
    org_detail = {
        **items["org"],
        "required": [*items["org"]["required"], "member_list"],
        "properties": {
            **items["org"]["properties"],
            "member_list": {"type": "array", "items": items["user"]},
        },
    }
    return {
        "AdminPerson": items["user"],
        "AdminPeople": _page_of("users", items["user"]),
        "AdminOrg": items["org"],
        "AdminOrgDetail": org_detail,
        "AdminOrgs": _page_of("orgs", items["org"]),
        "AdminKeys": _page_of("keys", items["key"]),
        "AdminLicence": items["licence"],
        "AdminLicences": _page_of("licences", items["licence"]),
    }


def _principal_paths(bad: dict[str, str]) -> dict[str, Schema]:
    query = {"400": "A bad query parameter (limit, offset, cursor), named"}
    change = {**bad, "409": "Already in that state (suspended, revoked, expired)"}
    reason = _object(["reason"], reason=_TEXT)
    page_body = {
        "limit": {"type": "integer", "minimum": 1, "maximum": 500},
        "offset": {"type": "integer", "minimum": 0},
        "after": {"type": "string", "minLength": 1, "maxLength": 64},
    }
    return {
        "/admin/api/users": _with_query(
            _operation(
                "get",
                "People by id, a page at a time (principals:read; audited)",
                "AdminPeople",
                query,
            ),
            "org",
            *_PAGE_PARAMS,
        ),
        "/admin/api/users/search": _operation(
            "post",
            "People whose email or name contains the text (principals:read; audited)",
            "AdminPeople",
            bad,
            body=_object(["text"], text=_TEXT, org=_TEXT, **page_body),
        ),
        "/admin/api/users/{subject}/suspend": _operation(
            "post",
            "Refuse a person every model until reinstated (principals:write)",
            "AdminPerson",
            change,
            params=("subject",),
            body=reason,
        ),
        "/admin/api/users/{subject}/reinstate": _operation(
            "post",
            "Lift a person's suspension (principals:write)",
            "AdminPerson",
            change,
            params=("subject",),
            body=reason,
        ),
        "/admin/api/orgs": _with_query(
            _operation("get", "Organisations by id (principals:read)", "AdminOrgs", query),
            *_PAGE_PARAMS,
        ),
        "/admin/api/orgs/{org}": _operation(
            "get",
            "An organisation and its members (principals:read; audited)",
            "AdminOrgDetail",
            {},
            params=("org",),
        ),
        "/admin/api/orgs/{org}/members": _with_query(
            _operation(
                "get",
                "An organisation's members by id (principals:read; audited)",
                "AdminPeople",
                query,
                params=("org",),
            ),
            *_PAGE_PARAMS,
        ),
        "/admin/api/orgs/{org}/update": _operation(
            "post",
            "Rename an organisation or change its country; screened again (principals:write)",
            "AdminOrg",
            {**bad, "409": "Another organisation has that name"},
            params=("org",),
            body=_object([], name=_TEXT, country=_TEXT),
        ),
        "/admin/api/keys": _with_query(
            _operation(
                "get",
                "API keys, never their secrets, for a person (user: subject) or an "
                "organisation (principals:read)",
                "AdminKeys",
                query,
            ),
            "user",
            "org",
            *_PAGE_PARAMS,
        ),
        "/admin/api/licences": _with_query(
            _operation("get", "Licences by id (principals:read)", "AdminLicences", query),
            "org",
            *_PAGE_PARAMS,
        ),
        "/admin/api/licences/{licence}": _operation(
            "get", "One licence (principals:read)", "AdminLicence", {}, params=("licence",)
        ),
        "/admin/api/licences/{licence}/revoke": _operation(
            "post",
            "Revoke a licence: it covers nobody from now on (principals:write)",
            "AdminLicence",
            change,
            params=("licence",),
            body=reason,
        ),
        "/admin/api/licences/{licence}/expire": _operation(
            "post",
            "End a licence now (principals:write)",
            "AdminLicence",
            {"409": "The licence is revoked or already expired"},
            params=("licence",),
        ),
        "/admin/api/licences/{licence}/renew": _operation(
            "post",
            "Give a licence a new expiry date (principals:write)",
            "AdminLicence",
            {**bad, "409": "The licence is revoked"},
            params=("licence",),
            body=_object(["until"], until=_TEXT),
        ),
    }


# -- the misuse guard's review queue (admin/guard_routes.py) ----------------------------------


def _guard_flag() -> Schema:
    return _object(
        ["id", "created_at", "model", "stage", "categories", "score", "digest", "case", "cleared"],
        id={"type": "integer"},
        created_at={"type": "string"},
        model={"type": "string"},
        stage={"enum": ["prompt", "output"]},
        categories={"type": "array", "items": {"type": "string"}},
        score={"type": "number", "minimum": 0, "maximum": 1},
        digest={"type": "string"},
        decision_index={"type": ["integer", "null"]},
        case={"type": ["integer", "null"]},
        cleared={"type": "boolean"},
        cleared_at=_NULLABLE_DATE_TIME,
    )


def _guard_schemas() -> dict[str, Schema]:
    case = _object(
        ["case", "email", "subject", "status", "opened_at", "flag_count", "models", "categories"],
        case={"type": "integer"},
        email={"type": "string"},
        subject={"type": "string"},
        status={"enum": ["pending", "cleared", "confirmed"]},
        opened_at={"type": "string"},
        decided_at=_NULLABLE_DATE_TIME,
        decided_by=_NULLABLE_TEXT,
        reason=_NULLABLE_TEXT,
        flag_count={"type": "integer", "minimum": 0},
        models={"type": "array", "items": {"type": "string"}},
        categories={"type": "array", "items": {"type": "string"}},
        max_score={"type": ["number", "null"]},
        audit_index={"type": "integer", "minimum": 0},
    )
    flag = _guard_flag()
    opened_flag = {
        **flag,
        "required": [*flag["required"], "excerpt"],
        "properties": {
            **flag["properties"],
            "excerpt": _NULLABLE_TEXT,  # null: erased (retention) or never stored
            "excerpt_erased": {"type": "boolean"},
        },
    }
    opened = {
        **case,
        "required": [*case["required"], "flags"],
        "properties": {**case["properties"], "flags": {"type": "array", "items": opened_flag}},
    }
    return {
        "AdminGuardCase": case,
        "AdminGuardCases": _object(["cases"], cases={"type": "array", "items": case}),
        "AdminGuardCaseOpened": opened,
        "AdminGuardFlags": _object(
            ["email", "subject", "usage_hold", "flags"],
            email={"type": "string"},
            subject={"type": "string"},
            usage_hold={"enum": [None, "pending", "confirmed"]},
            flags={"type": "array", "items": flag},
        ),
    }


def _guard_paths(bad: dict[str, str]) -> dict[str, Schema]:
    decided = {**bad, "409": "The case is not pending (decided already, or meanwhile)"}
    reason = _object(["reason"], reason=_TEXT)
    listed = _operation(
        "get",
        "Misuse-guard cases, pending first, then oldest first (review:read)",
        "AdminGuardCases",
        {"400": "A bad query parameter"},
    )
    ((method, operation),) = listed.items()
    status = {"enum": ["pending", "cleared", "confirmed"]}
    listed = {
        method: {
            **operation,
            "parameters": [{"name": "status", "in": "query", "required": False, "schema": status}],
        }
    }
    return {
        "/admin/api/guard/cases": listed,
        "/admin/api/guard/cases/{case}": _operation(
            "get",
            "Open a case: its flags with their excerpts, decrypted after the audited view "
            "(review:write)",
            "AdminGuardCaseOpened",
            {},
            params=("case",),
        ),
        "/admin/api/guard/cases/{case}/clear": _operation(
            "post",
            "Clear a case: the hold is lifted, its flags stop counting (review:write)",
            "AdminGuardCase",
            decided,
            params=("case",),
            body=reason,
        ),
        "/admin/api/guard/cases/{case}/confirm": _operation(
            "post",
            "Confirm a case: controlled models stay refused until released (review:write)",
            "AdminGuardCase",
            decided,
            params=("case",),
            body=reason,
        ),
        "/admin/api/users/{subject}/guard-flags": _operation(
            "get",
            "A person's misuse-guard flags, newest first, no excerpts (principals:read; audited)",
            "AdminGuardFlags",
            {},
            params=("subject",),
        ),
    }
