"""Is an upload a video or audio container? Decided by its first bytes, never by its name."""

from __future__ import annotations

import filetype

#: How much of the start of a file the decision needs (filetype reads at most this).
SNIFF_BYTES = 8192

_TS_PACKET = 188


def _is_mpeg_ts(head: bytes) -> bool:
    """MPEG transport stream (.ts, .m2ts from cameras): a 0x47 sync byte every 188 bytes."""
    packets = min(len(head) // _TS_PACKET, 5)
    return packets >= 2 and all(head[i * _TS_PACKET] == 0x47 for i in range(packets))


def media_type(head: bytes) -> str | None:
    """The container's MIME type when `head` starts a video or audio file, else None."""
    kind = filetype.guess(head)
    if kind is not None and kind.mime.partition("/")[0] in ("video", "audio"):
        return kind.mime
    if _is_mpeg_ts(head):
        return "video/mp2t"
    return None
