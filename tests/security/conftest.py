"""The running gateway of tests/gateway (demo upstream + gateway on real sockets, SQLite and
PostgreSQL), re-exported unchanged for the hostile-input and secrets tests."""

from __future__ import annotations

from tests.gateway.conftest import (
    Running,
    demo_upstream,
    gateway,
    instance,
    upstream_url,
)

__all__ = ["Running", "demo_upstream", "gateway", "instance", "upstream_url"]
