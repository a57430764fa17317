"""JSON-lines logging for every service, so one grep follows a job across all of them."""

from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

#: The id of the request or job being worked on; set by the gateway per request and by
#: consumers per message, and written into every log line made meanwhile.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class _RequestIdFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = request_id.get()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send the root logger's records to stdout as JSON lines; safe to call twice."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{service}{request_id}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_RequestIdFilter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_mp3converter", False):
            root.removeHandler(old)
    handler._mp3converter = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # pika narrates every connection step at INFO; mp3common.amqp logs the reconnects that
    # matter. Its own lines show at debug level only.
    logging.getLogger("pika").setLevel(
        logging.DEBUG if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
    )
