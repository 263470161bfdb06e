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
from clearance.errors import ConfigError, MailError

log = logging.getLogger("clearance.portal.mail")


@dataclass(frozen=True, slots=True)
class Message:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    def send(self, message: Message) -> None:
        """Blocking; raises MailError (server down or refusing) or ConfigError."""


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
    """RFC 5321 submission, with STARTTLS (RFC 3207) verified against the system's CAs (or
    `smtp_ca_file`). Every failure is a `MailError` (the server is down or refused) or a
    `ConfigError` (the settings do not fit the server), with a detail that names neither the
    recipient nor the message: the server's reply text often echoes the address."""

    def __init__(self, settings: PortalSettings, *, timeout: float = 15.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._password = ""
        self._tls: ssl.SSLContext | None = None
        # Credentials never cross the network in clear (OWASP ASVS 5.0 V12.3).
        if settings.smtp_username and not settings.smtp_starttls:
            raise ConfigError("[portal] smtp_username needs smtp_starttls = true")
        if settings.smtp_password_file is not None:
            try:
                self._password = settings.smtp_password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"[portal] smtp_password_file: {exc.strerror}") from None
        if settings.smtp_starttls:
            try:
                self._tls = ssl.create_default_context(cafile=settings.smtp_ca_file)
            except OSError as exc:  # unreadable, or no PEM certificate in it (ssl.SSLError)
                raise ConfigError(f"[portal] smtp_ca_file: {exc}") from None

    def send(self, message: Message) -> None:
        s = self._settings
        mail = EmailMessage()
        mail["From"] = s.mail_from
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail.set_content(message.body)
        where = f"{s.smtp_host}:{s.smtp_port}"
        try:
            self._submit(mail)
        except smtplib.SMTPAuthenticationError as exc:
            raise ConfigError(
                f"the mail server {where} refused the credentials ({exc.smtp_code})"
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise MailError(f"the mail server {where} refused the recipient {codes}") from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, ...
            raise MailError(
                f"the mail server {where} refused the message ({exc.smtp_code})"
            ) from None
        except ssl.SSLCertVerificationError:
            raise MailError(
                f"the TLS certificate of the mail server {where} is not trusted"
            ) from None
        except OSError as exc:  # refused connection, timeout, disconnect, TLS failure
            raise MailError(
                f"the mail server {where} cannot be reached ({type(exc).__name__})"
            ) from None

    def _submit(self, mail: EmailMessage) -> None:
        s = self._settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self._timeout) as smtp:
            smtp.ehlo()
            if self._tls is not None:
                # Never fall back to plain text when STARTTLS is asked for (RFC 3207 §6).
                if not smtp.has_extn("starttls"):
                    raise ConfigError(f"[portal] smtp_starttls: {s.smtp_host} offers no STARTTLS")
                smtp.starttls(context=self._tls)
                smtp.ehlo()
            if s.smtp_username:
                if not smtp.has_extn("auth"):
                    raise ConfigError(f"[portal] smtp_username: {s.smtp_host} offers no AUTH")
                smtp.login(s.smtp_username, self._password)
            smtp.send_message(mail)


def deliver(mailer: Mailer, message: Message) -> None:
    """Send, logging a failure without the address or the link (no personal data in logs)."""
    try:
        mailer.send(message)
    except (MailError, ConfigError) as exc:
        log.warning("sign-in mail not sent: %s", exc.detail)


def mailer_for(settings: PortalSettings) -> Mailer:
    return SmtpMailer(settings) if settings.smtp_host else ConsoleMailer()
