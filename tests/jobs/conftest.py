"""The running gateway and the portal's scripted browser, for the jobs' end-to-end tests."""

from __future__ import annotations

from tests.gateway.conftest import *  # noqa: F403
from tests.portal.conftest import browser, outbox, start_worker  # noqa: F401
