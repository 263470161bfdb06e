"""The gateway fixtures (a running Clearance on SQLite and PostgreSQL, the demo upstream)."""

from tests.gateway.conftest import demo_upstream, gateway, instance, upstream_url

__all__ = ["demo_upstream", "gateway", "instance", "upstream_url"]
