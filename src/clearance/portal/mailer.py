"""Outgoing mail for sign-in links: printed on the console (the demo) or sent over SMTP.

`Mailer.send` blocks; the portal calls it in a worker thread after the response has gone, so a
slow mail server changes neither the answer nor its timing (issue 7, item 6).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol, TextIO

from clearance.config import PortalSettings
from clearance.errors import ConfigError

log = logging.getLogger("clearance.portal.mail")


@dataclass(frozen=True, slots=True)
class Message:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    def send(self, message: Message) -> None: ...


class ConsoleMailer:
    """The demo's outbox: the message on standard output, where the operator can click it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, message: Message) -> None:
        out = self._stream or sys.stdout  # looked up per message: tests capture stdout
        print(
            f"--- mail to {message.to}: {message.subject}\n{message.body}\n---",
            file=out,
            flush=True,
        )


class SmtpMailer:
    """RFC 5321 submission, with STARTTLS (RFC 3207) verified against the system's CAs."""

    def __init__(self, settings: PortalSettings) -> None:
        self._settings = settings
        self._password = ""
        if settings.smtp_password_file is not None:
            try:
                self._password = settings.smtp_password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"[portal] smtp_password_file: {exc.strerror}") from None

    def send(self, message: Message) -> None:
        s = self._settings
        mail = EmailMessage()
        mail["From"] = s.mail_from
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail.set_content(message.body)
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=15) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_username:
                smtp.login(s.smtp_username, self._password)
            smtp.send_message(mail)


def deliver(mailer: Mailer, message: Message) -> None:
    """Send, logging a failure without the address or the link (no personal data in logs)."""
    try:
        mailer.send(message)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("sign-in mail not sent: %s", type(exc).__name__)


def mailer_for(settings: PortalSettings) -> Mailer:
    return SmtpMailer(settings) if settings.smtp_host else ConsoleMailer()
