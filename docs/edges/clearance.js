// nginx's half of Clearance as the decision point of the edge (docs/integrations.md), for the
// njs module (Debian: libnginx-mod-http-js). Loaded by clearance-nginx.conf.

// js_content reads the whole request body before it runs; the internal redirect then runs the
// access phase again, so the auth_request there can send that body to Clearance.
function check(r) {
    r.internalRedirect('@clearance_guarded');
}

// The body the upstream gets: the client's, with the model Clearance chose (the served model's
// upstream name, which is a fallback's when Clearance served one), never the client's own.
function upstreamBody(r) {
    var body = JSON.parse(r.requestText);
    body.model = r.variables.clearance_upstream_model;
    return JSON.stringify(body);
}

// A refusal: auth_request passes on only 2xx, 401 and 403, so Clearance (asked with
// X-Clearance-Edge: nginx) answers every refusal with a 403 carrying the real status, the
// SDK-shaped body (ASCII JSON), Link, Retry-After and the audit index in x-clearance-* headers.
function denied(r) {
    var v = r.variables;
    var status = Number(v.clearance_status);
    if (!(status >= 400 && status <= 599) || !v.clearance_body) {
        r.return(500, '{"error": {"message": "the decision service gave no answer"}}\n');
        return;
    }
    r.headersOut['Content-Type'] = 'application/json';
    if (v.clearance_link) {
        r.headersOut['Link'] = v.clearance_link;
    }
    if (v.clearance_retry_after) {
        r.headersOut['Retry-After'] = v.clearance_retry_after;
    }
    if (v.clearance_audit_index) {
        r.headersOut['Clearance-Audit-Index'] = v.clearance_audit_index;
    }
    r.return(status, v.clearance_body);
}

export default { check, upstreamBody, denied };
