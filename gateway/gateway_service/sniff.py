"""Is an upload a video or audio file? Judged by its first bytes, never by its name.

The judge is the converter's own ffmpeg (mp3common.media): libavformat names the format
from the first `PROBE_BYTES` of the file, exactly as it will when the converter opens the
whole file, so what the gateway takes the converter can read, and what libavformat calls
an image, a subtitle or a playlist, or cannot name, is refused before it is stored. The
same look tells the media's length when its container says it up front (MP4 with its
index first, Matroska, WebM, AVI, WAV…), which the media-length quota needs.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass

from mp3common import media

log = logging.getLogger(__name__)

#: How much of the start of a file the decision needs: what libavformat looks at.
SNIFF_BYTES = media.PROBE_BYTES


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes of a media file say: its MIME type and, when the container
    says it there, its length in seconds."""

    content_type: str
    duration_seconds: float | None


def sniff(head: bytes, *, ffmpeg: str) -> Sniffed | None:
    """What the media file `head` starts is, or None when it is not one."""
    try:
        result = media.probe(head, ffmpeg=ffmpeg)
    except subprocess.TimeoutExpired:
        log.warning("ffmpeg took too long to judge %d bytes; refusing them", len(head))
        return None
    if not result.is_media:
        log.info("not media: format %s, score %d", result.format, result.score)
        return None
    return Sniffed(media.mime_type(result, head), result.duration_seconds)
