"""The notification service: one mail per finished job, from the `mp3` queue.

A consumer process, not a web service: the shared `mp3common.amqp.Consumer` runs the
queue (prefetch 1, ack after the handler), `notify.Notifier` handles a message.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from mp3common import mongo
from mp3common.amqp import Consumer
from mp3common.jobs import Jobs
from mp3common.logs import configure_logging
from mp3common.metrics import serve

from . import settings as settings_module
from .notify import Notifier
from .smtp import Sender


def create_consumer(environ: Mapping[str, str] | None = None) -> Consumer:
    """Build the consumer from `environ` (the process environment when None).

    With METRICS_PORT set, the metrics are served from here on (a thread of this process).
    """
    configure_logging("notification")
    settings = settings_module.load(environ)
    configure_logging("notification", settings.log_level)
    client = mongo.client(settings.mongodb_uri, app_name="notification")
    notifier = Notifier(settings, Jobs(client[settings.mongodb_db]), Sender(settings))
    serve(settings.metrics_port)
    return Consumer(
        settings.rabbitmq_url,
        settings.mp3_queue,
        notifier,
        heartbeat_file=settings.heartbeat_file or None,
        stop_grace_seconds=settings.stop_grace_seconds,
        name=f"notification {socket.gethostname()}:{os.getpid()}",
    )
