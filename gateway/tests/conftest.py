"""Fixtures: the gateway app on the real stack `make run` started, with fresh state per test.

Real auth (the running service on AUTH_SVC_ADDRESS, users made with its own CLI), the
real RabbitMQ with a queue of the test's own, the real MongoDB-wire server with a
database of the test's own (mp3test_<uuid>, dropped afterwards). dev/test.sh puts
var/dev.env in the environment; run directly, these fixtures read it themselves.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
import requests
from bson import ObjectId
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

AUTH_SVC_ADDRESS = os.environ.get("AUTH_SVC_ADDRESS", "127.0.0.1:5000")
AUTH_URL = f"http://{AUTH_SVC_ADDRESS}"
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
MANAGEMENT_URL = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")


# --- users and tokens, from the real auth service ----------------------------------------


def create_user(email: str, password: str) -> None:
    """As an operator does: the auth service's `create-user` command."""
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "flask"), "--app", "server", "create-user", email]
        + ["--password-stdin"],
        cwd=ROOT / "auth",
        input=f"{password}\n",
        text=True,
        check=True,
        capture_output=True,
    )


class User:
    def __init__(self, prefix: str) -> None:
        self.email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
        self.password = f"pw-{uuid.uuid4().hex}"
        create_user(self.email, self.password)
        answer = requests.post(f"{AUTH_URL}/login", auth=(self.email, self.password), timeout=10)
        answer.raise_for_status()
        self.token = answer.text

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
def alice() -> User:
    return User("alice")


@pytest.fixture(scope="session")
def bob() -> User:
    return User("bob")


# --- media, made by ffmpeg -----------------------------------------------------------------


def ffmpeg(*args: str, output: Path) -> bytes:
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [exe, "-hide_banner", "-loglevel", "error", "-y", *args, str(output)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return output.read_bytes()


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, bytes]:
    """Small real files: videos and audio of several containers, and a picture."""
    folder = tmp_path_factory.mktemp("media")
    video = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10"]
    tone = ["-f", "lavfi", "-i", "sine=frequency=440"]
    return {
        "mp4": ffmpeg(
            *video,
            *tone,
            "-t",
            "2",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            "-shortest",
            output=folder / "clip.mp4",
        ),
        "mkv": ffmpeg(*video, "-t", "1", output=folder / "clip.mkv"),
        "ts": ffmpeg(*video, "-t", "1", "-f", "mpegts", output=folder / "clip.ts"),
        "mp3": ffmpeg(*tone, "-t", "2", "-c:a", "libmp3lame", output=folder / "tone.mp3"),
        "wav": ffmpeg(*tone, "-t", "1", output=folder / "tone.wav"),
        "png": ffmpeg(*video, "-frames:v", "1", output=folder / "still.png"),
    }


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
def environ(database, queue_name):
    return {
        "APP_ENV": "development",
        "AUTH_SVC_ADDRESS": AUTH_SVC_ADDRESS,
        "MONGODB_URI": MONGODB_URI,
        "MONGODB_DB": database.name,
        "RABBITMQ_URL": RABBITMQ_URL,
        "VIDEO_QUEUE": queue_name,
        "STRANDED_JOB_SWEEP_SECONDS": "0",  # tests sweep by hand (test_sweeper.py)
    }


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
            attempt=job["attempts"],
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
