"""The converter's settings: read once from the environment at start, validated."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

from mp3common.settings import Env

#: "V0".."V9" is LAME's VBR scale (V0 best); "64k".."320k" a constant bitrate.
_QUALITY = re.compile(r"^(v[0-9]|(32|40|48|56|64|80|96|112|128|160|192|224|256|320)k)$")


@dataclass(frozen=True)
class Settings:
    production: bool
    rabbitmq_url: str
    mongodb_uri: str
    mongodb_db: str
    video_queue: str
    mp3_queue: str
    mp3_quality: str
    ffmpeg_binary: str
    ffmpeg_timeout_base_seconds: float
    ffmpeg_timeout_per_media_second: float
    ffmpeg_timeout_max_seconds: float
    keep_source_video: bool
    work_dir: str
    heartbeat_file: str | None
    stop_grace_seconds: float
    metrics_port: int | None
    log_level: str

    def ffmpeg_quality_args(self) -> list[str]:
        if self.mp3_quality.startswith("v"):
            return ["-q:a", self.mp3_quality[1:]]
        return ["-b:a", self.mp3_quality]


def _bundled_ffmpeg() -> str:
    """The ffmpeg in imageio-ffmpeg's wheel (a static build with libmp3lame)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def load(environ: Mapping[str, str] | None = None) -> Settings:
    env = Env(environ)
    quality = env.text("MP3_QUALITY", "V2").lower()
    if not _QUALITY.match(quality):
        env.problems.append(
            f"MP3_QUALITY must be V0..V9 (VBR) or a bitrate such as 192k, not {quality!r}"
        )
    heartbeat_file = env.text("HEARTBEAT_FILE", "")
    settings = Settings(
        production=env.production,
        rabbitmq_url=env.amqp_url("RABBITMQ_URL"),
        mongodb_uri=env.text("MONGODB_URI", dev_default="mongodb://127.0.0.1:27017"),
        mongodb_db=env.text("MONGODB_DB", "mp3converter"),
        video_queue=env.text("VIDEO_QUEUE", "video"),
        mp3_queue=env.text("MP3_QUEUE", "mp3"),
        mp3_quality=quality,
        ffmpeg_binary=env.text("FFMPEG_BINARY", "") or _bundled_ffmpeg(),
        ffmpeg_timeout_base_seconds=env.number("FFMPEG_TIMEOUT_BASE_SECONDS", 30.0, minimum=1),
        ffmpeg_timeout_per_media_second=env.number(
            "FFMPEG_TIMEOUT_PER_MEDIA_SECOND", 0.5, minimum=0.01
        ),
        ffmpeg_timeout_max_seconds=env.number("FFMPEG_TIMEOUT_MAX_SECONDS", 3600.0, minimum=1),
        keep_source_video=env.flag("KEEP_SOURCE_VIDEO", False),
        work_dir=env.text("CONVERTER_WORK_DIR", "") or tempfile.gettempdir(),
        heartbeat_file=heartbeat_file or None,
        stop_grace_seconds=env.number("STOP_GRACE_SECONDS", 20.0, minimum=1),
        metrics_port=env.integer("METRICS_PORT", 0, minimum=0, maximum=65535) or None,
        log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
    )
    if not shutil.which(settings.ffmpeg_binary):
        env.problems.append(f"FFMPEG_BINARY {settings.ffmpeg_binary!r} is not an executable")
    if settings.video_queue == settings.mp3_queue:
        env.problems.append("VIDEO_QUEUE and MP3_QUEUE must differ")
    env.finish("converter")
    return settings
