"""The `video` queue: one confirmed-publish RabbitMQ connection per worker process.

mp3common's Publisher re-opens the connection when the broker dropped it (the
reference's "every upload 500s after idle time until a restart"). It is made on first
use in the process that publishes, so each gunicorn worker has its own connection,
named after the host and process so that it can be told apart in the management UI.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from bson import ObjectId
from pymongo.errors import PyMongoError

from mp3common.amqp import Publisher, PublishError
from mp3common.jobs import Job, Jobs
from mp3common.messages import VideoMessage

from .settings import Settings

log = logging.getLogger(__name__)

CONNECTION_NAME_PREFIX = "gateway"


def connection_name() -> str:
    return f"{CONNECTION_NAME_PREFIX} {socket.gethostname()} pid {os.getpid()}"


class JobPublisher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._publisher: Publisher | None = None
        self._pid: int | None = None

    @property
    def _current(self) -> Publisher:
        with self._lock:
            if self._publisher is None or self._pid != os.getpid():
                self._publisher = Publisher(
                    self._settings.rabbitmq_url,
                    [self._settings.video_queue],
                    name=connection_name(),
                    timeout=self._settings.rabbitmq_timeout_seconds,
                )
                self._pid = os.getpid()
            return self._publisher

    def publish_job(self, job: Job) -> None:
        """Publish the job's `video` message; raises PublishError unless confirmed."""
        self._current.publish(self._settings.video_queue, VideoMessage.for_job(job).body())

    def check(self) -> None:
        """Raise PublishError unless the broker answers, on a connection opened afresh if
        the one this process had is dead.

        An idle worker does not service its connection, so the broker closes it after two
        missed heartbeats (~60 s); the check is the first to find out, and that is the
        process's problem, not the broker's. Publisher.check drops the dead connection
        and raises, so it is asked once more: only a broker that refuses a new
        connection too makes the gateway not ready.
        """
        try:
            self._current.check()
        except PublishError:
            self._current.check()

    def close(self) -> None:
        with self._lock:
            if self._publisher is not None:
                self._publisher.close()
                self._publisher = None


def record_published(jobs: Jobs, job_id: ObjectId) -> None:
    """The broker confirmed the job's `video` message: say so on the job (`published_at`).
    If that write fails the job stays unconfirmed and the outbox relay publishes it once
    more later; the converter keeps one result per job."""
    try:
        jobs.mark_published(job_id)
    except PyMongoError:
        log.warning("job %s queued, but its confirm was not recorded (the relay will)", job_id)
