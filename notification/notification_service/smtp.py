"""Handing a mail to the SMTP server, and saying whether a failure is worth retrying.

One connection per mail: a notifier sends a few mails a minute at most, and a fresh
connection never finds itself dropped by the server's idle timeout. The reference let
any SMTP error escape its consumer, which then crash-looped; here every failure becomes
one of two exceptions, and the caller decides: retry (`TransientSendError`) or
dead-letter (`PermanentSendError`).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from mp3common.transient import TransientError

from .settings import Settings

log = logging.getLogger(__name__)


class SendError(Exception):
    """The SMTP server did not accept the mail."""


class TransientSendError(SendError, TransientError):
    """Unreachable, timed out, or a 4xx answer: the same mail may go through later."""


class PermanentSendError(SendError):
    """A 5xx answer (bad recipient, login refused, mail rejected): retrying will not help."""


NO_SMTPUTF8 = (
    "the address has a non-ASCII local part (before the @), and the mail server does not "
    "support SMTPUTF8, which such an address needs"
)


def _describe(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
    return f"{exc.smtp_code} {text or exc.smtp_error}".strip()


def classify(exc: Exception) -> SendError:
    """The SMTP failure `exc` as a transient or a permanent send error, with its reason."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # One recipient per mail: its answer is the answer.
        code, text = next(iter(exc.recipients.values()), (0, b""))
        reason = f"recipient refused: {code} {text.decode(errors='replace')}"
        return PermanentSendError(reason) if code >= 500 else TransientSendError(reason)
    if isinstance(exc, smtplib.SMTPResponseException):
        what = "login refused" if isinstance(exc, smtplib.SMTPAuthenticationError) else "refused"
        reason = f"{what}: {_describe(exc)}"
        if exc.smtp_code >= 500:
            return PermanentSendError(reason)
        return TransientSendError(reason)
    if isinstance(exc, smtplib.SMTPNotSupportedError) and "SMTPUTF8" in str(exc):
        return PermanentSendError(NO_SMTPUTF8)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentSendError(f"the server cannot do what SMTP_SECURITY asks: {exc}")
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError | smtplib.SMTPException):
        return TransientSendError(f"SMTP server unreachable or dropped us: {exc!r}")
    raise TypeError(f"not an SMTP failure: {exc!r}") from exc


class Sender:
    """Sends one mail per call over a fresh, bounded-time connection."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._tls = ssl.create_default_context(cafile=settings.smtp_ca_file or None)

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        if s.smtp_security == "ssl":
            return smtplib.SMTP_SSL(
                s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds, context=self._tls
            )
        connection = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
        if s.smtp_security == "starttls":
            try:
                connection.starttls(context=self._tls)
            except BaseException:
                connection.close()
                raise
        return connection

    def send(self, message: EmailMessage) -> None:
        """Return once the server accepted `message`; raise a SendError otherwise."""
        try:
            connection = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            raise classify(exc) from exc
        try:
            if self._settings.smtp_password:
                connection.login(self._settings.smtp_username, self._settings.smtp_password)
            _check_smtputf8(connection, message)
            connection.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise classify(exc) from exc
        finally:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()
        log.info("mail %s accepted by %s", message["Message-ID"], self._settings.smtp_host)


def _check_smtputf8(connection: smtplib.SMTP, message: EmailMessage) -> None:
    """A non-ASCII address needs SMTPUTF8; without it, say so (smtplib's own error names
    no address and read like an SMTP_SECURITY problem)."""
    addresses = [str(message[header]) for header in ("From", "To") if message[header]]
    if all(address.isascii() for address in addresses):
        return
    connection.ehlo_or_helo_if_needed()
    if not connection.has_extn("smtputf8"):
        to = str(message["To"])
        raise PermanentSendError(f"{NO_SMTPUTF8}: {to}")
