import pytest

from converter_service import settings as settings_module
from mp3common.settings import SettingsError


def test_development_defaults_work_with_an_empty_environment():
    settings = settings_module.load({})
    assert settings.video_queue == "video" and settings.mp3_queue == "mp3"
    assert settings.mongodb_db == "mp3converter"
    assert settings.ffmpeg_quality_args() == ["-q:a", "2"]
    assert settings.keep_source_video is False
    assert settings.heartbeat_file == ""
    assert "ffmpeg" in settings.ffmpeg_binary


@pytest.mark.parametrize(
    ("quality", "args"),
    [("V0", ["-q:a", "0"]), ("v5", ["-q:a", "5"]), ("192k", ["-b:a", "192k"])],
)
def test_mp3_quality_is_vbr_or_a_bitrate(quality, args):
    assert settings_module.load({"MP3_QUALITY": quality}).ffmpeg_quality_args() == args


def test_every_problem_is_told_in_one_line():
    with pytest.raises(SettingsError) as error:
        settings_module.load(
            {
                "MP3_QUALITY": "loud",
                "FFMPEG_TIMEOUT_PER_MEDIA_SECOND": "soon",
                "KEEP_SOURCE_VIDEO": "maybe",
                "FFMPEG_BINARY": "/nowhere/ffmpeg",
            }
        )
    message = str(error.value)
    assert "\n" not in message and message.startswith("converter cannot start: ")
    for name in (
        "MP3_QUALITY",
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
