"""Clearance as the decision point of an edge that already runs: HTTP forward-auth (nginx,
Caddy, Traefik, Envoy's HTTP ext_authz), Envoy's gRPC ext_authz, and a LiteLLM hook. Each asks
the decision service (clearance.decision) exactly as the proxy does (docs/integrations.md)."""
