"""The SMTP mailer against a real SMTP server (aiosmtpd on loopback): plain submission to a
local relay, STARTTLS with a verified certificate and AUTH, and every way it can fail."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from clearance.app import create_app
from clearance.config import PortalSettings
from clearance.errors import ConfigError, MailError
from clearance.net.serving import serve_in_thread
from clearance.portal.mailer import Message, SmtpMailer, deliver, mailer_for
from tests.portal.conftest import Browser, Running
from tests.portal.smtp import Inbox, MailCa, closed_port, make_ca, smtp_server

LINK = "http://127.0.0.1:8080/portal/signin/link/tok_secret-part"
T = TypeVar("T")
MESSAGE = Message("ada@example.org", "Your Clearance sign-in link", f"Open:\n\n{LINK}\n")


def plain(port: int, **changes: object) -> PortalSettings:
    """A local relay: plain SMTP to 127.0.0.1, no credentials."""
    base = PortalSettings(mail_from="clearance@example.org", smtp_host="127.0.0.1", smtp_port=port)
    return dataclasses.replace(base, **{"smtp_starttls": False, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> MailCa:
    return make_ca(tmp_path_factory.mktemp("mail-ca"))


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "smtp-password"
    path.write_text("s3cret-pass\n")
    return path


def test_plain_smtp_to_a_local_relay_delivers_the_link() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        mailer = mailer_for(plain(port))
        assert isinstance(mailer, SmtpMailer)
        mailer.send(MESSAGE)
    [got] = inbox.messages
    assert got.recipients == ["ada@example.org"] and got.sender == "clearance@example.org"
    assert got.message["To"] == "ada@example.org"
    assert got.message["Subject"] == "Your Clearance sign-in link"
    body = got.message.get_body(("plain",))
    assert body is not None and LINK in body.get_content()
    assert not got.tls and got.login is None


def test_starttls_with_a_verified_certificate_then_login(ca: MailCa, password_file: Path) -> None:
    inbox = Inbox(password=b"s3cret-pass")
    with smtp_server(
        inbox, tls_context=ca.server, require_starttls=True, authenticator=inbox.authenticate
    ) as port:
        settings = plain(
            port,
            smtp_starttls=True,
            smtp_ca_file=ca.ca_file,
            smtp_username="portal",
            smtp_password_file=password_file,
        )
        SmtpMailer(settings).send(MESSAGE)
    [got] = inbox.messages
    assert got.tls and got.login == b"portal"  # logged in only inside TLS
    assert got.recipients == ["ada@example.org"]


def test_a_certificate_not_signed_by_a_trusted_ca_is_refused(ca: MailCa) -> None:
    inbox = Inbox()
    with smtp_server(inbox, tls_context=ca.server, require_starttls=True) as port:
        mailer = SmtpMailer(plain(port, smtp_starttls=True))  # the system's CAs only
        with pytest.raises(MailError, match=r"certificate .* is not trusted"):
            mailer.send(MESSAGE)
    assert inbox.messages == []


def test_no_plain_text_fallback_when_starttls_is_missing() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:  # offers no STARTTLS
        with pytest.raises(ConfigError, match="offers no STARTTLS"):
            SmtpMailer(plain(port, smtp_starttls=True)).send(MESSAGE)
    assert inbox.messages == []


def test_refused_credentials_are_a_configuration_error(ca: MailCa, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    inbox = Inbox(password=b"s3cret-pass")
    with smtp_server(inbox, tls_context=ca.server, authenticator=inbox.authenticate) as port:
        settings = plain(
            port,
            smtp_starttls=True,
            smtp_ca_file=ca.ca_file,
            smtp_username="portal",
            smtp_password_file=wrong,
        )
        with pytest.raises(ConfigError, match=r"refused the credentials \(535\)"):
            SmtpMailer(settings).send(MESSAGE)
    assert inbox.messages == []


def test_credentials_without_starttls_are_refused_at_start(password_file: Path) -> None:
    settings = plain(1, smtp_username="portal", smtp_password_file=password_file)
    with pytest.raises(ConfigError, match="smtp_username needs smtp_starttls"):
        SmtpMailer(settings)


def test_a_refused_recipient_is_a_mail_error_that_does_not_name_it() -> None:
    inbox = Inbox(refuse_recipients=True)
    with smtp_server(inbox) as port, pytest.raises(MailError) as caught:
        SmtpMailer(plain(port)).send(MESSAGE)
    assert "refused the recipient [550]" in caught.value.detail
    assert "ada@example.org" not in caught.value.detail
    assert caught.value.__suppress_context__  # the vendor error, which names it, is dropped


def test_a_server_that_is_down_is_a_mail_error() -> None:
    with closed_port() as port, pytest.raises(MailError, match="cannot be reached") as caught:
        SmtpMailer(plain(port)).send(MESSAGE)
    assert caught.value.status == 503


def test_deliver_logs_a_failure_without_the_address_or_the_link(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with closed_port() as port, caplog.at_level(logging.WARNING, "clearance.portal.mail"):
        deliver(SmtpMailer(plain(port)), MESSAGE)  # does not raise
    [record] = caplog.records
    assert record.getMessage().startswith("sign-in mail not sent: the mail server 127.0.0.1:")
    _assert_nothing_personal(caplog, "ada@example.org")


# -- through the gateway ------------------------------------------------------------------------


@pytest.fixture
def mail_worker(gateway: Running) -> Iterator[tuple[str, Inbox]]:
    """A second gateway worker on the same database that mails links through aiosmtpd."""
    inbox = Inbox()
    with smtp_server(inbox) as port:
        settings = dataclasses.replace(gateway.settings, portal=plain(port))
        with serve_in_thread(create_app(settings)) as url:
            yield url, inbox


def test_the_link_arrives_by_smtp_and_signs_in(mail_worker: tuple[str, Inbox]) -> None:
    url, inbox = mail_worker
    browser = Browser(url)
    assert browser.ask_link("alice@demo.test").status_code == 200
    got = _wait_for(lambda: inbox.messages)[0]  # mailed after the answer
    assert got.recipients == ["alice@demo.test"]
    body = got.message.get_body(("plain",))
    assert body is not None
    match = re.search(r"/portal/signin/link/([A-Za-z0-9_-]+)", body.get_content())
    assert match, body.get_content()
    assert browser.confirm(match.group(1)).status_code == 303
    assert browser.get("/portal/").status_code == 200
    browser.close()


def test_a_mail_server_that_is_down_changes_nothing_for_the_browser(
    gateway: Running, caplog: pytest.LogCaptureFixture
) -> None:
    with closed_port() as port:
        settings = dataclasses.replace(gateway.settings, portal=plain(port))
        with (
            caplog.at_level(logging.WARNING, "clearance.portal.mail"),
            serve_in_thread(create_app(settings)) as url,
        ):
            browser = Browser(url)
            known = browser.ask_link("alice@demo.test")
            unknown = browser.ask_link("nobody-here@example.org")
            browser.close()
            _wait_for(lambda: len(_failures(caplog)) >= 2)
    assert known.status_code == unknown.status_code == 200 and known.text == unknown.text
    assert all("cannot be reached" in message for message in _failures(caplog))
    _assert_nothing_personal(caplog, "alice@demo.test", "nobody-here@example.org")


def _failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "sign-in mail not sent" in r.getMessage()]


def _assert_nothing_personal(caplog: pytest.LogCaptureFixture, *addresses: str) -> None:
    for record in caplog.records:
        text = record.getMessage() + str(record.exc_info or "")
        assert "/signin/link/" not in text and "tok_secret" not in text, text
        assert not any(address in text for address in addresses), text


def _wait_for(probe: Callable[[], T], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting")
