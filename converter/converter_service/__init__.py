"""The converter: a RabbitMQ consumer turning uploaded videos into MP3s (no HTTP API)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from pymongo.errors import PyMongoError

from mp3common.amqp import Consumer, dead_letter_queue, run_consumer
from mp3common.logs import configure_logging
from mp3common.metrics import serve
from mp3common.mongo import client

from . import settings as settings_module
from .handler import JobHandler, remove_stale_work_dirs
from .reaper import DeadLetterReaper

log = logging.getLogger(__name__)


def build_consumer(environ: Mapping[str, str] | None = None) -> Consumer:
    """The consumer of VIDEO_QUEUE, built from `environ` (the process environment when None).

    With METRICS_PORT set, the metrics are served from here on (a thread of this process).
    """
    return build_consumers(environ)[0]


def build_consumers(environ: Mapping[str, str] | None = None) -> list[Consumer]:
    """The process's consumers: VIDEO_QUEUE's, and the reaper of its dead letters
    (`reaper.py`), which makes sure every dead-lettered job ends final and told."""
    configure_logging("converter")
    settings = settings_module.load(environ)
    configure_logging("converter", settings.log_level)
    database = client(settings.mongodb_uri, app_name="converter")[settings.mongodb_db]
    handler = JobHandler(settings, database)
    try:
        handler.storage.ensure_indexes()
    except PyMongoError as exc:  # not fatal: jobs wait for MongoDB anyway
        log.warning("could not create the MP3 index yet: %r", exc)
    remove_stale_work_dirs(settings.work_dir)
    serve(settings.metrics_port)
    name = f"converter {socket.gethostname()}:{os.getpid()}"
    converter = Consumer(
        settings.rabbitmq_url,
        settings.video_queue,
        handler,
        publishes_to=[settings.mp3_queue],
        heartbeat_file=settings.heartbeat_file,
        stop_grace_seconds=settings.stop_grace_seconds,
        name=name,
    )
    reaper = Consumer(
        settings.rabbitmq_url,
        dead_letter_queue(settings.video_queue),
        DeadLetterReaper(settings, database),
        publishes_to=[settings.mp3_queue],
        dead_letters_of=settings.video_queue,
        stop_grace_seconds=settings.stop_grace_seconds,
        name=f"{name} reaper",
    )
    return [converter, reaper]


def main(environ: Mapping[str, str] | None = None) -> None:
    """The process: `python -m consumer` (or `python consumer.py`) from the converter folder."""
    run_consumer("converter", build_consumers, environ)
