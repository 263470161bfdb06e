"""The running gateway of tests/gateway (demo upstream + gateway on real sockets, SQLite and
PostgreSQL), re-exported for the hostile-input and secrets tests, with no bad-key limit: the
fuzzer is one client sending thousands of requests without a valid key, and each must be
answered 401, not 429 (tests/gateway/test_refusals.py holds the limit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearance.config import Settings
from tests.gateway.conftest import (
    Running,
    demo_upstream,
    gateway,
    make_instance,
    upstream_url,
)

__all__ = ["Running", "demo_upstream", "gateway", "instance", "upstream_url"]


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> tuple[Settings, Path]:
    return make_instance(db_url, tmp_path / "instance", "bad_keys_per_client = 0\n")
