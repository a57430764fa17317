"""The running stack's converters, driven as the gateway drives them: GridFS, job, `video`.

The whole flow through the gateway is in test_flow_reference.py; here the converters are
fed directly (the video stored in GridFS, its job created, the message put on `video`),
to check what only they decide: how many run, and that a bad file never holds up the
next one.
"""

from __future__ import annotations

import os
import random
import uuid

import gridfs
import pytest
import requests
from pymongo import MongoClient

from mp3common.amqp import Publisher
from mp3common.jobs import CHUNK_SIZE_BYTES, VIDEO_BUCKET, Job, Jobs
from mp3common.messages import VideoMessage
from mp3testing import wait_until
from mp3testing.media import make_clip

pytestmark = pytest.mark.stack  # drives the stack make run started

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
MANAGEMENT_URL = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
VIDEO_QUEUE = os.environ.get("VIDEO_QUEUE", "video")


@pytest.fixture(scope="module")
def stack():
    mongo = MongoClient(MONGODB_URI, serverSelectionTimeoutMS=3000, tz_aware=True)
    database = mongo[os.environ.get("MONGODB_DB", "mp3converter")]
    publisher = Publisher(RABBITMQ_URL, [VIDEO_QUEUE], name="converter-system-test")
    yield database, publisher
    publisher.close()
    mongo.close()


def submit(stack, content: bytes, filename: str):
    """Do what the gateway does for an upload; the job's id."""
    database, publisher = stack
    videos = gridfs.GridFSBucket(database, VIDEO_BUCKET, chunk_size_bytes=CHUNK_SIZE_BYTES)
    video_id = videos.upload_from_stream(filename, content)
    job = Jobs(database).create(
        video_id,
        owner=f"converter-system-{uuid.uuid4().hex[:6]}@example.com",
        filename=filename,
        size=len(content),
        content_type="video/mp4",
        request_id=uuid.uuid4().hex,
    )
    publisher.publish(VIDEO_QUEUE, VideoMessage.for_job(job).body())
    return video_id


def wait_final(stack, job_id, timeout: float = 60.0) -> Job:
    jobs = Jobs(stack[0])

    def final() -> Job | None:
        job = jobs.get(job_id)
        return job if job.finished else None

    if job := wait_until(final, timeout, interval=0.1):
        return job
    raise AssertionError(f"job {job_id} still {jobs.get(job_id).state} after {timeout} s")


def clip(tmp_path) -> bytes:
    path = make_clip(tmp_path / "clip.mp4", 2, args=["-c:v", "libx264", "-preset", "ultrafast"])
    return path.read_bytes()


def test_make_run_starts_as_many_converters_as_converters_says():
    wanted = int(os.environ.get("CONVERTERS", "2"))
    queue = requests.get(f"{MANAGEMENT_URL}/api/queues/%2F/{VIDEO_QUEUE}", timeout=5).json()
    names = [
        consumer["channel_details"]["connection_name"]
        for consumer in requests.get(f"{MANAGEMENT_URL}/api/consumers", timeout=5).json()
        if consumer["queue"]["name"] == VIDEO_QUEUE
    ]
    assert queue["consumers"] >= wanted, names


def test_bad_files_fail_with_a_reason_and_the_next_job_still_converts(stack, tmp_path):
    noise = submit(stack, random.Random(7).randbytes(200_000), "noise.mp4")
    empty = submit(stack, b"", "empty.mp4")
    good = submit(stack, clip(tmp_path), "after.mp4")
    assert wait_final(stack, noise).reason == (
        "the file is not a video or audio file that can be read"
    )
    assert wait_final(stack, empty).reason == "the file is empty"
    job = wait_final(stack, good)
    assert job.state == "done" and abs(job.duration_seconds - 2.0) <= 0.1
