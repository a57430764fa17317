"""Fixtures on the real RabbitMQ and MongoDB-wire server `make run` provides.

Every test gets its own queue names (`test.conv.<hex>`) and database (`mp3test_<hex>`),
both removed afterwards, so the running stack's converter (which consumes `video`) and
other tests never see them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import gridfs
import pika
import pytest
from bson import ObjectId

from mp3common.amqp import Publisher
from mp3common.jobs import CHUNK_SIZE_BYTES, MP3_BUCKET, VIDEO_BUCKET, Job, Jobs
from mp3common.messages import VideoMessage
from mp3common.mongo import client
from mp3common.options import parse_options
from mp3testing import RABBITMQ_URL, delete_queues, wait_until

CONVERTER_DIR = Path(__file__).resolve().parent.parent
ROOT = CONVERTER_DIR.parent
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
OWNER = "ann@example.com"


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@dataclass
class World:
    """One test's own database and queues, and what a gateway would do with them."""

    db_name: str
    video_queue: str
    mp3_queue: str
    work_dir: Path
    database: object = field(repr=False)
    publisher: Publisher = field(repr=False)

    @property
    def jobs(self) -> Jobs:
        return Jobs(self.database)

    @property
    def videos(self) -> gridfs.GridFSBucket:
        return gridfs.GridFSBucket(self.database, VIDEO_BUCKET, chunk_size_bytes=CHUNK_SIZE_BYTES)

    @property
    def mp3s(self) -> gridfs.GridFSBucket:
        return gridfs.GridFSBucket(self.database, MP3_BUCKET, chunk_size_bytes=CHUNK_SIZE_BYTES)

    def environ(self, **overrides: str) -> dict[str, str]:
        return {
            **os.environ,
            "APP_ENV": "development",
            "RABBITMQ_URL": RABBITMQ_URL,
            "MONGODB_URI": MONGODB_URI,
            "MONGODB_DB": self.db_name,
            "VIDEO_QUEUE": self.video_queue,
            "MP3_QUEUE": self.mp3_queue,
            "CONVERTER_WORK_DIR": str(self.work_dir),
            **overrides,
        }

    def upload(
        self,
        path: Path,
        filename: str | None = None,
        owner: str = OWNER,
        options: dict[str, str] | None = None,
        max_media_seconds: float | None = None,
    ):
        """Store a video and its job as the gateway does, with the options given as form
        fields (`{"format": "opus"}`); the job's id (= the video's)."""
        filename = filename or path.name
        with path.open("rb") as source:
            video_id = self.videos.upload_from_stream(filename, source)
        self.jobs.create(
            video_id,
            owner=owner,
            filename=filename,
            size=path.stat().st_size,
            content_type=None,
            request_id=uuid.uuid4().hex,
            options=parse_options(options or {})[0],
            max_media_seconds=max_media_seconds,
        )
        return video_id

    def publish(self, job_id: ObjectId) -> None:
        self.publisher.publish(self.video_queue, VideoMessage.for_job(self.jobs.get(job_id)).body())

    def submit(self, path: Path, filename: str | None = None, **job: object) -> ObjectId:
        """`upload` (`job`: its options, max_media_seconds) and publish its message."""
        job_id = self.upload(path, filename, **job)
        self.publish(job_id)
        return job_id

    def wait_final(self, job_id: ObjectId, timeout: float = 30.0) -> Job:
        def final() -> Job | None:
            job = self.jobs.get(job_id)
            return job if job.finished else None

        if job := wait_until(final, timeout):
            return job
        raise AssertionError(f"job {job_id} not finished in {timeout} s: {self.jobs.get(job_id)}")

    def messages(self, queue: str, timeout: float = 1.0, count: int = 1) -> list[dict]:
        """Every message on `queue` (acked); waits up to `timeout` for the first `count`."""
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        try:
            channel = connection.channel()
            found = []
            deadline = time.monotonic() + timeout
            while True:
                method, _, body = channel.basic_get(queue)
                if method is not None:
                    channel.basic_ack(method.delivery_tag)
                    found.append(json.loads(body))
                    continue
                if len(found) >= count or time.monotonic() > deadline:
                    return found
                time.sleep(0.05)
        finally:
            connection.close()

    def mp3_files(self, job_id: ObjectId) -> list[dict]:
        return list(self.database[f"{MP3_BUCKET}.files"].find({"metadata.job_id": job_id}))


@pytest.fixture
def world(tmp_path):
    yield from _world(tmp_path)


@pytest.fixture(scope="module")
def module_world(tmp_path_factory):
    yield from _world(tmp_path_factory.mktemp("world"))


def _world(tmp_path: Path):
    mongo = client(MONGODB_URI, app_name="converter-tests")
    tag = uuid.uuid4().hex[:10]
    video_queue, mp3_queue = f"test.conv.{tag}.video", f"test.conv.{tag}.mp3"
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    world = World(
        db_name=f"mp3test_{tag}",
        video_queue=video_queue,
        mp3_queue=mp3_queue,
        work_dir=work_dir,
        database=mongo[f"mp3test_{tag}"],
        publisher=Publisher(RABBITMQ_URL, [video_queue, mp3_queue], name="converter-tests"),
    )
    try:
        yield world
    finally:
        world.publisher.close()
        mongo.drop_database(world.db_name)
        delete_queues(video_queue, mp3_queue)


class ConverterProcess:
    """A real converter process (`python -m consumer`), its output in a log file."""

    def __init__(self, world: World, name: str, **env: str) -> None:
        self.log_path = world.work_dir.parent / f"{name}.log"
        # Its own queue's, not its dead-letter reaper's (which may be ready first).
        self._ready_line = f'"consuming {world.video_queue}"'
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "consumer"],
            cwd=CONVERTER_DIR,
            env=world.environ(**env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a pod is: killpg kills all
        )

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready_line in self.log_path.read_text(errors="replace"):
                return
            assert self.process.poll() is None, self.log_path.read_text()
            time.sleep(0.05)
        raise AssertionError(f"converter not consuming: {self.log_path.read_text()}")

    def log_lines(self) -> list[dict]:
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def converters(world):
    """Start converter processes on the test's queues; all are killed at the end."""
    started: list[ConverterProcess] = []

    def start(name: str = "converter", **env: str) -> ConverterProcess:
        process = ConverterProcess(world, f"{name}-{len(started)}", **env)
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()
