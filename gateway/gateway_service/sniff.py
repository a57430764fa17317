"""Is an upload a video or audio container? Decided by its first bytes, never by its name.

The filetype library knows the common containers; what it does not know and a person
may well upload (camcorder M2TS and DV, broadcast MXF, AC-3/DTS/MP2 audio, CAF, AU,
Wave64, WavPack, TTA, APE, NUT, RealMedia) is recognised here by its signature. A
container we let through that holds no audio is the converter's to refuse, with a reason.
"""

from __future__ import annotations

import filetype

#: How much of the start of a file the decision needs (filetype reads at most this).
SNIFF_BYTES = 8192

#: (bytes at offset 0, MIME type) for containers filetype does not know.
_SIGNATURES = (
    (b"\x06\x0e\x2b\x34\x02\x05\x01\x01\x0d\x01\x02", "application/mxf"),
    (b"nut/multimedia container\x00", "video/x-nut"),
    (b".RMF", "application/vnd.rn-realmedia"),
    (b"riff\x2e\x91\xcf\x11", "audio/x-w64"),
    (b"caff", "audio/x-caf"),
    (b".snd", "audio/basic"),
    (b"wvpk", "audio/x-wavpack"),
    (b"TTA1", "audio/x-tta"),
    (b"MAC ", "audio/x-ape"),
    (b"\x7f\xfe\x80\x01", "audio/vnd.dts"),
    (b"\x0b\x77", "audio/ac3"),
)


def _is_mpeg_ts(head: bytes, packet: int = 188, sync_at: int = 0) -> bool:
    """MPEG transport stream: a 0x47 sync byte every 188 bytes (.ts), or every 192 bytes
    after a 4-byte timestamp (.m2ts/.mts from camcorders, Blu-ray)."""
    packets = min((len(head) - sync_at) // packet, 5)
    return packets >= 2 and all(head[sync_at + i * packet] == 0x47 for i in range(packets))


def _is_dv(head: bytes) -> bool:
    """DV (camcorder tape format): a DIF header block first."""
    return len(head) >= 4 and head[:3] == b"\x1f\x07\x00" and head[3] & 0x7F == 0x3F


def _is_mpeg_audio(head: bytes) -> bool:
    """A bare MPEG audio frame header (layer I, II or III; filetype knows only III)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def media_type(head: bytes) -> str | None:
    """The container's MIME type when `head` starts a video or audio file, else None."""
    kind = filetype.guess(head)
    if kind is not None and kind.mime.partition("/")[0] in ("video", "audio"):
        return kind.mime
    for signature, mime in _SIGNATURES:
        if head.startswith(signature):
            return mime
    if _is_mpeg_ts(head) or _is_mpeg_ts(head, packet=192, sync_at=4):
        return "video/mp2t"
    if _is_dv(head):
        return "video/dv"
    if _is_mpeg_audio(head):
        return "audio/mpeg"
    return None
