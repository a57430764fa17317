import datetime as dt
import logging

import pytest

from converter_service import settings as settings_module
from mp3common.settings import SettingsError


def test_development_defaults_work_with_an_empty_environment():
    settings = settings_module.load({})
    assert settings.video_queue == "video" and settings.mp3_queue == "mp3"
    assert settings.mongodb_db == "mp3converter"
    assert settings.output_retention_seconds == settings.failed_video_retention_seconds == 604800
    assert settings.keep_source_video is False
    assert settings.heartbeat_file == ""
    assert "ffmpeg" in settings.ffmpeg_binary


@pytest.mark.parametrize(
    ("job_limit", "limit"), [(None, 21600.0), (1800.0, 1800.0), (86400.0, 21600.0)]
)
def test_a_jobs_media_limit_is_its_owners_within_max_media_seconds(job_limit, limit):
    assert settings_module.load({}).media_limit(job_limit) == limit


def test_expiry_is_counted_from_the_moment_given():
    settings = settings_module.load(
        {"OUTPUT_RETENTION_SECONDS": "3600", "FAILED_VIDEO_RETENTION_SECONDS": "86400"}
    )
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert settings.output_expiry(moment) == moment + dt.timedelta(hours=1)
    assert settings.video_expiry(moment) == moment + dt.timedelta(days=1)


def test_every_problem_is_told_in_one_line():
    with pytest.raises(SettingsError) as error:
        settings_module.load(
            {
                "OUTPUT_RETENTION_SECONDS": "a week",
                "FFMPEG_TIMEOUT_PER_MEDIA_SECOND": "soon",
                "KEEP_SOURCE_VIDEO": "maybe",
                "FFMPEG_BINARY": "/nowhere/ffmpeg",
            }
        )
    message = str(error.value)
    assert "\n" not in message and message.startswith("converter cannot start: ")
    for name in (
        "OUTPUT_RETENTION_SECONDS",
        "FFMPEG_TIMEOUT_PER_MEDIA_SECOND",
        "KEEP_SOURCE_VIDEO",
        "FFMPEG_BINARY",
    ):
        assert name in message


def test_the_two_queues_must_differ():
    with pytest.raises(SettingsError, match="VIDEO_QUEUE and MP3_QUEUE must differ"):
        settings_module.load({"VIDEO_QUEUE": "same", "MP3_QUEUE": "same"})


def test_production_needs_the_broker_and_database_named():
    with pytest.raises(SettingsError, match="MONGODB_URI is not set; RABBITMQ_URL is not set"):
        settings_module.load({"APP_ENV": "production"})
    settings = settings_module.load(
        {
            "APP_ENV": "production",
            "RABBITMQ_URL": "amqp://converter:s3cret@rabbitmq:5672/%2F",
            "MONGODB_URI": "mongodb://mongodb:27017",
            "HEARTBEAT_FILE": "/tmp/alive",
        }
    )
    assert settings.production and settings.heartbeat_file == "/tmp/alive"


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        "amqp://guest:guest@rabbitmq:5672/%2F",
        "amqp://rabbitmq:5672/%2F",
    ],
)
def test_production_refuses_the_guest_broker_account(url):
    """As the gateway and the notification service do: one rule, mp3common's."""
    refused = "RABBITMQ_URL (is the development default|logs in as RabbitMQ's guest account)"
    with pytest.raises(SettingsError, match=refused):
        settings_module.load(
            {
                "APP_ENV": "production",
                "RABBITMQ_URL": url,
                "MONGODB_URI": "mongodb://mongodb:27017",
            }
        )


def test_the_retired_mp3_quality_is_named_at_start_not_silently_ignored(caplog):
    """MP3_QUALITY set the one quality before uploads chose theirs: whoever still sets it
    is told it is not read, and what took its place."""
    with caplog.at_level(logging.WARNING):
        settings_module.load({"MP3_QUALITY": "320k"})
    assert "MP3_QUALITY is set but no longer read" in caplog.text
    assert "quality=" in caplog.text
