"""The portal through the running gateway (tests/gateway/conftest.py), from a scripted browser.

`Browser` keeps its own cookie jar: the portal's cookies are `__Host-` and Secure, which
http.cookiejar would never send over the loopback's plain HTTP (browsers treat loopback as a
secure context and do).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest

# Every fixture of the running gateway (`gateway` and what it needs), whatever they become.
from tests.gateway.conftest import *  # noqa: F403
from tests.gateway.conftest import CLEARANCE, Running

__all__ = ["Browser", "Outbox", "Running"]

# The job time limit of the workers tests start (the production default): a verification takes
# seconds, but a loaded CI machine has been seen to take over 15 s for the first one.
WORKER_TIME_LIMIT = 120
# Their lease ([jobs] lease_seconds, renewed every quarter of it by a live worker): what the job
# of a worker killed mid-job waits before another worker takes it over.
WORKER_LEASE_SECONDS = 6

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
_LINK = re.compile(r"https?://\S+/portal/signin/link/([A-Za-z0-9_-]+)")


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}
        self.http = httpx.Client(base_url=base, follow_redirects=False, timeout=60)

    def close(self) -> None:
        self.http.close()

    def _remember(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def _cookie_header(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        headers = {**self._cookie_header(), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        response = self.http.get(path, headers=headers, **kwargs)  # type: ignore[arg-type]
        self._remember(response)
        return response

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        headers = {**self._cookie_header(), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        response = self.http.post(path, headers=headers, **kwargs)  # type: ignore[arg-type]
        self._remember(response)
        return response

    def csrf(self, path: str = "/portal/signin") -> str:
        page = self.get(path)
        if page.status_code == 303:  # e.g. /signin when signed in already
            page = self.get(page.headers["location"])
        match = _CSRF.search(page.text)
        assert match, f"no CSRF token on {path}: {page.status_code}"
        return match.group(1)

    def ask_link(self, email: str) -> httpx.Response:
        return self.post("/portal/signin", data={"csrf": self.csrf(), "email": email})

    def confirm(self, token: str, **fields: str) -> httpx.Response:
        csrf = self.csrf(f"/portal/signin/link/{token}")
        return self.post(f"/portal/signin/link/{token}", data={"csrf": csrf, **fields})

    def sign_in(self, email: str, outbox: Outbox, **fields: str) -> None:
        assert self.ask_link(email).status_code == 200
        response = self.confirm(outbox.link_for(email), **fields)
        assert response.status_code == 303, response.text
        assert "__Host-clearance_session" in self.cookies


class Outbox:
    """The console mailer's output (it prints to stdout, which pytest captures)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def read(self) -> str:
        self.text += self.capsys.readouterr().out
        return self.text

    def link_for(self, email: str, timeout: float = 10.0) -> str:
        """The token of the newest link mailed to `email` (mail goes out after the answer)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            blocks = [b for b in self.read().split("--- mail to ") if b.startswith(email + ":")]
            if blocks:
                match = _LINK.search(blocks[-1])
                assert match, blocks[-1]
                self.text = self.text.replace(blocks[-1], "")
                return match.group(1)
            time.sleep(0.05)
        raise AssertionError(f"no sign-in mail to {email}")

    def mails_to(self, email: str) -> int:
        return self.read().count(f"--- mail to {email}:")


@pytest.fixture
def outbox(capsys: pytest.CaptureFixture[str]) -> Outbox:
    return Outbox(capsys)


@pytest.fixture
def browser(gateway: Running) -> Iterator[Browser]:
    b = Browser(gateway.url)
    yield b
    b.close()


@pytest.fixture
def other_browser(gateway: Running) -> Iterator[Browser]:
    b = Browser(gateway.url)
    yield b
    b.close()


def spawn_worker(
    config: Path, time_limit: int = WORKER_TIME_LIMIT, lease: int = WORKER_LEASE_SECONDS
) -> subprocess.Popen[bytes]:
    """`clearance worker` on the instance of `config`, in a session of its own (a kill of the
    group reaches its runners). The caller stops it (`stop_workers`)."""
    env = {
        **os.environ,
        "CLEARANCE_CONFIG": str(config),
        "CLEARANCE_JOBS_TIME_LIMIT_SECONDS": str(time_limit),
        "CLEARANCE_JOBS_LEASE_SECONDS": str(lease),
    }
    return subprocess.Popen(
        [CLEARANCE, "worker", "--config", str(config)], env=env, start_new_session=True
    )


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each one still running, then SIGKILL to any still there 20 s later: a job
    still running at the end is not waited for."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def start_worker(gateway: Running) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """`clearance worker` processes on the gateway's instance (`spawn_worker`); stopped when the
    test ends."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        time_limit: int = WORKER_TIME_LIMIT, lease: int = WORKER_LEASE_SECONDS
    ) -> subprocess.Popen[bytes]:
        started.append(spawn_worker(gateway.config_file, time_limit, lease))
        return started[-1]

    yield start
    stop_workers(started)
