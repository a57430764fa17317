"""Is an upload a video or audio file? Judged by its first bytes, never by its name.

The judge is the converter's own ffmpeg (mp3common.media): libavformat names the format
from the first `PROBE_BYTES` of the file, exactly as it will when the converter opens the
whole file, so what the gateway takes the converter can read, and what libavformat calls
an image, a subtitle or a playlist, or cannot name, is refused before it is stored.
"""

from __future__ import annotations

import logging
import subprocess

from mp3common import media

log = logging.getLogger(__name__)

#: How much of the start of a file the decision needs: what libavformat looks at.
SNIFF_BYTES = media.PROBE_BYTES


def media_type(head: bytes, *, ffmpeg: str) -> str | None:
    """The MIME type of the media file `head` starts, or None when it is not one."""
    try:
        result = media.probe(head, ffmpeg=ffmpeg)
    except subprocess.TimeoutExpired:
        log.warning("ffmpeg took too long to judge %d bytes; refusing them", len(head))
        return None
    if not result.is_media:
        log.info("not media: format %s, score %d", result.format, result.score)
        return None
    return media.mime_type(result, head)
