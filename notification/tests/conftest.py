"""Fixtures on real servers: SMTP servers (aiosmtpd) started per test, with STARTTLS and
AUTH, that can answer 4xx or 5xx on purpose; and, for the tests marked `stack`, RabbitMQ and
the MongoDB-wire server that `make run` provides, with a queue and a database of the test's
own, deleted afterwards. The SMTP tests need neither: their settings name a queue and a
database that nothing is behind, and nothing is deleted after them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import os
import socket
import ssl
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from bson import ObjectId

from mp3common.amqp import Publisher
from mp3common.jobs import Job, Jobs
from mp3common.mongo import client
from mp3common.options import DEFAULT_OPTIONS, ConversionOptions
from mp3testing import RABBITMQ_URL, delete_queues
from notification_service import settings as settings_module

MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
SMTP_USER, SMTP_PASSWORD = "mp3converter@example.com", "app-password-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it accepts, and answers what a test scripts.

    `answers` are given, one per RCPT, before it accepts: e.g. ["451 4.7.1 Try later"].
    `before_data` runs (in a thread) before the DATA reply, to hold the mail mid-flight.
    """

    answers: list[str] = field(default_factory=list)
    rcpt_attempts: int = 0
    messages: list = field(default_factory=list)
    before_data: Callable[[], None] | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        self.rcpt_attempts += 1
        if self.answers:
            return self.answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.before_data is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.before_data)
        raw = envelope.content.replace(b"\r\n", b"\n")  # as a mailbox stores it
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (SMTP_USER, SMTP_PASSWORD)
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """A real SMTP server on 127.0.0.1: STARTTLS + AUTH required when `tls` is given;
    SMTPUTF8 (internationalised addresses) offered only when `smtputf8`."""

    def __init__(self, mailbox: Mailbox, tls: tuple | None = None, smtputf8: bool = False) -> None:
        self.mailbox = mailbox
        self.port = free_port()
        kwargs: dict = {"enable_SMTPUTF8": smtputf8}
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            kwargs |= dict(
                tls_context=context,
                require_starttls=True,
                auth_required=True,
                auth_require_tls=True,
                authenticator=_authenticate,
            )
        self.tls = tls
        self.controller = Controller(mailbox, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    def environ(self) -> dict[str, str]:
        env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port)}
        if self.tls is None:
            return env | {"SMTP_SECURITY": "none", "GMAIL_ADDRESS": SMTP_USER}
        return env | {
            "SMTP_SECURITY": "starttls",
            "SMTP_CA_FILE": str(self.tls[0]),
            "GMAIL_ADDRESS": SMTP_USER,
            "GMAIL_PASSWORD": SMTP_PASSWORD,
        }


@pytest.fixture
def mailbox():
    return Mailbox()


@pytest.fixture
def smtp(mailbox, certificate):
    """The realistic server: STARTTLS and AUTH required, like Gmail's port 587."""
    with SmtpServer(mailbox, tls=certificate) as server:
        yield server


@pytest.fixture
def database_name():
    name = f"mp3test_{uuid.uuid4().hex[:12]}"
    yield name
    client(MONGODB_URI, app_name="notification-tests").drop_database(name)


@pytest.fixture
def jobs(database_name):
    return Jobs(client(MONGODB_URI, app_name="notification-tests")[database_name])


@pytest.fixture
def queue_name():
    name = f"test.notify.{uuid.uuid4().hex[:10]}"
    yield name
    delete_queues(name)


@pytest.fixture
def environ(request):
    """The service's environment for a test; add an SMTP server's `environ()` to it. The
    test's own queue and database when it is marked `stack`."""
    settings = {
        "APP_ENV": "development",
        "RABBITMQ_URL": RABBITMQ_URL,
        "MONGODB_URI": MONGODB_URI,
        "MONGODB_DB": "mp3test_no_database",
        "MP3_QUEUE": "test.notify.no-queue",
        "PUBLIC_URL": "http://mp3converter.com",
        "SMTP_TIMEOUT_SECONDS": "3",
        "SMTP_RETRY_BACKOFF_SECONDS": "0.1",
        "SMTP_RETRY_MAX_BACKOFF_SECONDS": "0.4",
    }
    if request.node.get_closest_marker("stack"):
        settings["MONGODB_DB"] = request.getfixturevalue("database_name")
        settings["MP3_QUEUE"] = request.getfixturevalue("queue_name")
    return settings


def make_settings(environ: dict[str, str]):
    return settings_module.load(environ)


def finished_job(
    jobs: Jobs,
    *,
    owner: str = "alice@example.com",
    filename: str = "holiday clip.mp4",
    failed_because: str | None = None,
    options: ConversionOptions = DEFAULT_OPTIONS,
    notes: tuple[str, ...] = (),
    copied: bool = False,
    expires_at: dt.datetime | None = None,
) -> Job:
    """A job as the converter leaves it: done (with an MP3 id) or failed (with a reason).

    By default as before issue 13 (MP3, no notes, no expiry: kept until deleted)."""
    job_id = ObjectId()
    jobs.create(
        job_id,
        owner=owner,
        filename=filename,
        size=1000,
        content_type="video/mp4",
        request_id="r",
        options=options,
        notes=notes,
    )
    jobs.start(job_id)
    if failed_because:
        jobs.fail(job_id, failed_because, expires_at=expires_at)
    else:
        jobs.finish(
            job_id,
            mp3_fid=ObjectId(),
            mp3_size=500,
            duration_seconds=30.0,
            copied=copied,
            expires_at=expires_at,
        )
    return jobs.get(job_id)


def publish(queue: str, body: dict) -> None:
    publisher = Publisher(RABBITMQ_URL, [queue])
    try:
        publisher.publish(queue, body)
    finally:
        publisher.close()
