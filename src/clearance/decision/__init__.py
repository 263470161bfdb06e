"""The decision service: one request's credential, endpoint and parsed fields in; the policy's
answer out, its entry durable before the answer leaves. The gateway's proxy and every edge
integration (Envoy ext_authz, HTTP forward-auth, LiteLLM) ask it the same way
(docs/integrations.md).
"""
