"""The image's `python consumer.py`: bad settings, one line, as the converter's."""

import os
from pathlib import Path

from mp3testing import refusal_to_start

NOTIFICATION_DIR = Path(__file__).resolve().parent.parent


def test_bad_settings_print_one_line_and_exit_non_zero():
    environ = {
        "PATH": os.environ.get("PATH", os.defpath),
        "APP_ENV": "production",
        "RABBITMQ_URL": "amqp://rabbitmq:5672/%2F",
        "SMTP_PORT": "smtp",
    }
    line = refusal_to_start(["consumer.py"], NOTIFICATION_DIR, environ)
    assert line.startswith("notification cannot start: ")
    assert "RABBITMQ_URL logs in as RabbitMQ's guest account" in line
    assert "MONGODB_URI is not set" in line and "SMTP_PORT: input should be a valid integer" in line
