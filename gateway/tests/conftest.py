"""Fixtures: the gateway app, with fresh state per test.

Auth is a small fake of the auth service's HTTP contract (/login, /validate, /healthz),
served over real sockets on 127.0.0.1 for the session: the gateway's own behaviour is what
these tests check; the real auth service behind the real gateway is the system tests' part.
A test marked `stack` gets the real RabbitMQ with a queue of its own and the real
MongoDB-wire server with a database of its own (mp3test_<uuid>, dropped afterwards); any
other test gets names nothing is behind, and passes only if it never reaches a store.
dev/test.sh puts var/dev.env in the environment; run directly, these fixtures read it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from bson import ObjectId
from flask import Flask, jsonify, request
from gridfs import GridFSBucket
from werkzeug.serving import make_server

from gateway_service import create_app
from mp3common.jobs import CHUNK_SIZE_BYTES, MP3_BUCKET, VIDEO_BUCKET, Jobs
from mp3common.mongo import client as mongo_client

ROOT = Path(__file__).resolve().parents[2]


def _load_dev_env() -> None:
    env_file = ROOT / "var" / "dev.env"
    if "RABBITMQ_URL" in os.environ or not env_file.exists():
        return
    for line in env_file.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            os.environ.setdefault(name.strip(), value.strip())


_load_dev_env()
from mp3testing import delete_queues  # noqa: E402 - reads the environment just loaded
from mp3testing.media import make_clip  # noqa: E402

MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
MANAGEMENT_URL = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")


# --- users and tokens, from a fake of the auth service ---------------------------------------


class FakeAuth:
    """The auth service's HTTP contract, as the gateway relies on it, with users in a dict.

    Answers as auth does: /login takes HTTP basic credentials and answers the token as
    text/plain, or a JSON 401 with a Basic challenge; /validate answers a Bearer token's
    claims, or a JSON 401 saying why; /healthz answers ok.
    """

    CHALLENGE = {"WWW-Authenticate": 'Basic realm="mp3converter"'}

    def __init__(self) -> None:
        self.passwords: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.app = Flask("fake_auth")
        self.app.post("/login")(self.login)
        self.app.post("/validate")(self.validate)
        self.app.get("/healthz")(lambda: jsonify(status="ok"))

    def add_user(self, email: str, password: str) -> None:
        self.passwords[email] = password

    def login(self):
        credentials = request.authorization
        if credentials is None or not credentials.username or not credentials.password:
            return self._refuse("missing_credentials", "Send your email and password.")
        if self.passwords.get(credentials.username) != credentials.password:
            return self._refuse("invalid_credentials", "The email or password is wrong.")
        token = ".".join(
            base64.urlsafe_b64encode(part.encode()).decode().rstrip("=")
            for part in ("fake", credentials.username, uuid.uuid4().hex)
        )
        self.tokens[token] = credentials.username
        return token, 200, {"Content-Type": "text/plain; charset=utf-8"}

    def _refuse(self, error: str, message: str):
        return jsonify(error=error, message=message), 401, self.CHALLENGE

    def validate(self):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return jsonify(error="missing_token", message="Send a Bearer token."), 401
        email = self.tokens.get(token.strip())
        if email is None:
            return jsonify(error="invalid_token", message="The token is not valid."), 401
        now = int(time.time())
        return jsonify(sub=email, iat=now, exp=now + 600)


@pytest.fixture(scope="session")
def fake_auth():
    auth = FakeAuth()
    with serving(auth.app) as port:
        auth.address = f"127.0.0.1:{port}"
        yield auth


class User:
    def __init__(self, auth: FakeAuth, prefix: str) -> None:
        self.email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
        self.password = f"pw-{uuid.uuid4().hex}"
        auth.add_user(self.email, self.password)
        answer = auth.app.test_client().post("/login", auth=(self.email, self.password))
        assert answer.status_code == 200
        self.token = answer.get_data(as_text=True)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
def alice(fake_auth) -> User:
    return User(fake_auth, "alice")


@pytest.fixture(scope="session")
def bob(fake_auth) -> User:
    return User(fake_auth, "bob")


# --- media, made by ffmpeg -----------------------------------------------------------------


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, bytes]:
    """Small real files: videos and audio of several containers, and a picture."""
    folder = tmp_path_factory.mktemp("media")
    small = {"size": "64x48", "rate": 10}
    files = {
        "mp4": make_clip(folder / "clip.mp4", 2, **small, args=["-c:v", "mpeg4", "-c:a", "aac"]),
        "mkv": make_clip(folder / "clip.mkv", 1, **small, audio=False),
        "ts": make_clip(folder / "clip.ts", 1, **small, audio=False, args=["-f", "mpegts"]),
        "mp3": make_clip(folder / "tone.mp3", 2, video=False, args=["-c:a", "libmp3lame"]),
        "wav": make_clip(folder / "tone.wav", 1, video=False),
        "png": make_clip(folder / "still.png", 1, **small, audio=False, args=["-frames:v", "1"]),
    }
    return {kind: path.read_bytes() for kind, path in files.items()}


# --- fresh state per test ------------------------------------------------------------------


@pytest.fixture
def database():
    """A database of the test's own on the real server; dropped afterwards."""
    name = f"mp3test_{uuid.uuid4().hex[:12]}"
    mongo = mongo_client(MONGODB_URI, app_name="gateway-tests")
    yield mongo[name]
    mongo.drop_database(name)


@pytest.fixture
def queue_name():
    """A queue of the test's own (the running converter consumes the real `video`)."""
    name = f"test.gateway.{uuid.uuid4().hex[:10]}"
    yield name
    delete_queues(name)


@pytest.fixture
def environ(request, fake_auth):
    """The gateway's settings: the test's own database and queue when it is marked `stack`."""
    settings = {
        "APP_ENV": "development",
        "AUTH_SVC_ADDRESS": fake_auth.address,
        "MONGODB_URI": MONGODB_URI,
        "MONGODB_DB": "mp3test_no_database",
        "RABBITMQ_URL": RABBITMQ_URL,
        "VIDEO_QUEUE": "test.gateway.no-queue",
        "OUTBOX_RELAY_INTERVAL_SECONDS": "0",  # tests relay by hand (test_outbox.py)
        "EXPIRY_SWEEP_INTERVAL_SECONDS": "0",  # and sweep by hand (test_expiry.py)
        "TUS_EXPIRY_SWEEP_SECONDS": "0",  # expired resumable uploads too (test_tus.py)
        # Login counters in the process; a test marked `stack` counts in its own database.
        "LOGIN_LIMIT_STORAGE": "memory",
    }
    if request.node.get_closest_marker("stack"):
        settings["MONGODB_DB"] = request.getfixturevalue("database").name
        settings["VIDEO_QUEUE"] = request.getfixturevalue("queue_name")
        settings["LOGIN_LIMIT_STORAGE"] = "mongodb"
    return settings


@pytest.fixture
def make_app(environ):
    """Build a gateway with some settings changed; its AMQP connection is closed afterwards."""
    apps = []

    def make(**changes: str):
        app = create_app({**environ, **changes})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["gateway"].publisher.close()
        app.extensions["gateway"].quotas.close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


# --- looking at what the gateway stored and sent -------------------------------------------


class Stored:
    """What is in the test's database: files, chunks and jobs."""

    def __init__(self, database) -> None:
        self.database = database
        self.jobs = Jobs(database)

    def counts(self) -> dict[str, int]:
        return {
            "files": self.database[f"{VIDEO_BUCKET}.files"].count_documents({}),
            "chunks": self.database[f"{VIDEO_BUCKET}.chunks"].count_documents({}),
            "jobs": self.database["jobs"].count_documents({}),
        }

    def video(self, fid: str) -> bytes:
        return GridFSBucket(self.database, VIDEO_BUCKET).open_download_stream(ObjectId(fid)).read()

    def finish_job(self, fid: str, mp3: bytes) -> ObjectId:
        """Do what the converter does when it succeeds: store the MP3, mark the job done."""
        bucket = GridFSBucket(self.database, MP3_BUCKET, chunk_size_bytes=CHUNK_SIZE_BYTES)
        mp3_fid = bucket.upload_from_stream("converted.mp3", mp3)
        job = self.jobs.start(ObjectId(fid))
        assert self.jobs.finish(
            ObjectId(fid),
            mp3_fid=mp3_fid,
            mp3_size=len(mp3),
            duration_seconds=2.0,
            attempt=job.attempts,
        )
        return mp3_fid


@pytest.fixture
def stored(database) -> Stored:
    return Stored(database)


def upload(client, user: User | None, files: list[tuple[str, str, bytes]], **kwargs):
    """POST /upload as multipart with `files` as (field, filename, content) triples."""
    import io

    data = {}
    for field, filename, content in files:
        data.setdefault(field, []).append((io.BytesIO(content), filename))
    headers = user.headers if user else {}
    return client.post("/upload", headers=headers, data=data, **kwargs)


# --- the gateway behind a real HTTP server (for what a test client cannot do) --------------


@contextlib.contextmanager
def serving(app):
    """`app` served over real sockets (werkzeug, threaded) meanwhile: its port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture
def live_gateway(app):
    with serving(app) as port:
        yield port


def exchange(port: int, *pieces: bytes) -> str:
    """Send raw bytes to the server, then read its answer until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for piece in pieces:
            sock.sendall(piece)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode("latin-1")


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers: a hung service, for real."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()
