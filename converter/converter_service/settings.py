"""The converter's settings: read once from the environment at start, validated."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from mp3common.settings import BrokerSettings, ConsumerSettings, MediaSettings, StoreSettings

#: "V0".."V9" is LAME's VBR scale (V0 best); "64k".."320k" a constant bitrate.
_QUALITY = re.compile(r"^(v[0-9]|(32|40|48|56|64|80|96|112|128|160|192|224|256|320)k)$")


def _an_mp3_quality(value: str) -> str:
    if not _QUALITY.match(value):
        raise ValueError(f"must be V0..V9 (VBR) or a bitrate such as 192k, not {value!r}")
    return value


class Settings(BrokerSettings, StoreSettings, ConsumerSettings, MediaSettings):
    """`VIDEO_QUEUE` in, `MP3_QUEUE` out; ffmpeg's quality, binary, time limits, scratch."""

    service_name = "converter"

    video_queue: str = "video"
    mp3_queue: str = "mp3"
    #: LAME's VBR scale (V0 best) or a constant bitrate, in any case.
    mp3_quality: Annotated[
        str, BeforeValidator(lambda v: v.strip().lower()), AfterValidator(_an_mp3_quality)
    ] = "v2"
    #: ffmpeg's time limit: base + per second of media, at most max (all in seconds).
    ffmpeg_timeout_base_seconds: float = Field(30.0, ge=1)
    ffmpeg_timeout_per_media_second: float = Field(0.5, ge=0.01)
    ffmpeg_timeout_max_seconds: float = Field(3600.0, ge=1)
    #: The longest media a job may be, in seconds (6 h): a longer file is refused before
    #: it is converted (an hour of silent Opus is 1.4 MB to upload, 14 s of a converter).
    max_media_seconds: float = Field(21600.0, ge=1)
    #: Keep the uploaded video in GridFS after its MP3 is made (default: delete it).
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

    def ffmpeg_quality_args(self) -> list[str]:
        if self.mp3_quality.startswith("v"):
            return ["-q:a", self.mp3_quality[1:]]
        return ["-b:a", self.mp3_quality]


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """The converter's settings from `environ` (default: os.environ); SettingsError if not."""
    return Settings.read(environ)
