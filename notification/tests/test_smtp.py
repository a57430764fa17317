"""The sender against real SMTP servers: what each kind of failure becomes."""

import socket
import ssl
import time

import pytest
from aiosmtpd.controller import Controller
from bson import ObjectId
from conftest import SMTP_PASSWORD, Mailbox, SmtpServer, free_port, make_settings

from mp3common.jobs import Job
from notification_service.compose import compose
from notification_service.smtp import PermanentSendError, Sender, TransientSendError


def _message(owner="alice@example.com"):
    job = Job.from_document(
        {"_id": ObjectId(), "owner": owner, "filename": "clip.mp4", "state": "done"}
    )
    return compose(job, sender="mp3converter@example.com", public_url="http://mp3converter.com")


def _sender(environ, server, **changes):
    return Sender(make_settings(environ | server.environ() | changes))


def test_starttls_and_login_deliver_the_mail(environ, smtp, mailbox):
    _sender(environ, smtp).send(_message())
    [(mail_from, rcpt_tos, message)] = mailbox.messages
    assert mail_from == "mp3converter@example.com"
    assert rcpt_tos == ["alice@example.com"]
    assert message["Subject"] == "Your MP3 is ready: clip.mp4"


def test_implicit_tls_delivers_the_mail(environ, certificate, mailbox):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, ssl_context=context)
    controller.start()
    try:
        settings = make_settings(
            environ
            | {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "ssl"}
            | {"SMTP_CA_FILE": str(certificate[0]), "GMAIL_ADDRESS": "mp3converter@example.com"}
        )
        Sender(settings).send(_message())
    finally:
        controller.stop()
    assert len(mailbox.messages) == 1


def test_a_wrong_password_is_permanent(environ, smtp, mailbox):
    with pytest.raises(PermanentSendError, match="login refused: 535"):
        _sender(environ, smtp, GMAIL_PASSWORD=SMTP_PASSWORD + "x").send(_message())
    assert mailbox.messages == []


def test_an_untrusted_certificate_is_not_sent_to(environ, smtp, mailbox):
    with pytest.raises(TransientSendError, match="CERTIFICATE_VERIFY_FAILED"):
        _sender(environ, smtp, SMTP_CA_FILE="").send(_message())
    assert mailbox.messages == []


def test_starttls_asked_of_a_server_without_it_is_permanent(environ):
    with SmtpServer(Mailbox()) as plain:
        with pytest.raises(PermanentSendError, match="SMTP_SECURITY"):
            _sender(environ, plain, SMTP_SECURITY="starttls").send(_message())


@pytest.mark.parametrize(
    ("answer", "error", "reason"),
    [
        ("550 5.1.1 No such user", PermanentSendError, "recipient refused: 550 5.1.1 No such user"),
        ("553 5.1.3 Bad address", PermanentSendError, "recipient refused: 553"),
        ("451 4.7.1 Greylisted, try later", TransientSendError, "recipient refused: 451"),
        ("452 4.2.2 Mailbox full", TransientSendError, "recipient refused: 452"),
        ("421 4.7.0 Too many connections", TransientSendError, "421"),
    ],
)
def test_smtp_answers_are_classified_by_their_code(environ, certificate, answer, error, reason):
    box = Mailbox(answers=[answer])
    with SmtpServer(box, tls=certificate) as server:
        with pytest.raises(error, match=reason):
            _sender(environ, server).send(_message())
    assert box.messages == []


def test_a_server_that_is_down_is_transient_and_fails_fast(environ):
    settings = make_settings(
        environ | {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(free_port()), "SMTP_SECURITY": "none"}
    )
    started = time.monotonic()
    with pytest.raises(TransientSendError, match="unreachable"):
        Sender(settings).send(_message())
    assert time.monotonic() - started < 2


def test_a_server_that_never_answers_times_out(environ):
    """A listener that accepts and stays silent: the timeout, not a hang."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings = make_settings(
            environ
            | {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_SECURITY": "none"}
            | {"SMTP_TIMEOUT_SECONDS": "1"}
        )
        started = time.monotonic()
        with pytest.raises(TransientSendError, match="timed out"):
            Sender(settings).send(_message())
    assert time.monotonic() - started < 3
