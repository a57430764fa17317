"""The converter's settings: read once from the environment at start, validated."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from typing import Self

from pydantic import Field, model_validator

from mp3common.settings import (
    BrokerSettings,
    ConsumerSettings,
    MediaSettings,
    RetentionSettings,
    StoreSettings,
)


class Settings(BrokerSettings, StoreSettings, ConsumerSettings, MediaSettings, RetentionSettings):
    """`VIDEO_QUEUE` in, `MP3_QUEUE` out; ffmpeg's binary, time limits, scratch; how long
    outputs and failed jobs' videos are kept (RetentionSettings).

    The output's format and quality are the job's (mp3common.options), their defaults the
    catalog's: MP3 at LAME's V2.
    """

    service_name = "converter"
    retired = {
        "MP3_QUALITY": "each upload chooses its format and quality (format=, quality=); "
        "without them an MP3 at V2, the catalog's default (mp3common.options)",
    }

    video_queue: str = "video"
    mp3_queue: str = "mp3"
    #: ffmpeg's time limit: base + per second of media, at most max (all in seconds).
    ffmpeg_timeout_base_seconds: float = Field(30.0, ge=1)
    ffmpeg_timeout_per_media_second: float = Field(0.5, ge=0.01)
    ffmpeg_timeout_max_seconds: float = Field(3600.0, ge=1)
    #: The longest media a job may convert, in seconds (6 h): longer is refused before it
    #: is converted (an hour of silent Opus is 1.4 MB to upload, 14 s of a converter). A
    #: job's own `max_media_seconds` (its owner's quota) may be lower.
    max_media_seconds: float = Field(21600.0, ge=1)
    #: Keep the uploaded video in GridFS after its output is made (default: delete it).
    keep_source_video: bool = False
    #: Where ffmpeg's input and output files are written; unset = the system's temp dir.
    work_dir: str = Field(
        default_factory=tempfile.gettempdir, validation_alias="CONVERTER_WORK_DIR"
    )
    stop_grace_seconds: float = Field(20.0, ge=1)

    @model_validator(mode="after")
    def _two_queues(self) -> Self:
        if self.video_queue == self.mp3_queue:
            raise ValueError("VIDEO_QUEUE and MP3_QUEUE must differ")
        return self

    def media_limit(self, job_limit: float | None) -> float:
        """The longest media a job may convert: its own limit, within MAX_MEDIA_SECONDS."""
        return min(job_limit, self.max_media_seconds) if job_limit else self.max_media_seconds


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """The converter's settings from `environ` (default: os.environ); SettingsError if not."""
    return Settings.read(environ)
