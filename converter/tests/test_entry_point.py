"""`python -m consumer` and the image's `python consumer.py`: bad settings, one line."""

import os
from pathlib import Path

import pytest

from mp3testing import refusal_to_start

CONVERTER_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", [["-m", "consumer"], ["consumer.py"]])
def test_bad_settings_print_one_line_and_exit_non_zero(command, tmp_path):
    environ = {
        "PATH": os.environ.get("PATH", os.defpath),
        "APP_ENV": "production",
        "RABBITMQ_URL": "amqp://guest:guest@rabbitmq:5672/%2F",
        "OUTPUT_RETENTION_SECONDS": "a week",
        "CONVERTER_WORK_DIR": str(tmp_path),
    }
    line = refusal_to_start(command, CONVERTER_DIR, environ)
    assert line.startswith("converter cannot start: ")
    assert "RABBITMQ_URL logs in as RabbitMQ's guest account" in line
    assert "MONGODB_URI is not set" in line and "OUTPUT_RETENTION_SECONDS" in line
