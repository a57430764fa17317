"""Containers are recognised by their content: real files made by ffmpeg, and impostors."""

import gzip
import io
import zipfile

import pytest
from conftest import ffmpeg

from gateway_service.sniff import SNIFF_BYTES, media_type

VIDEO = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "1"]
VIDEO_AND_TONE = [*VIDEO, "-f", "lavfi", "-i", "sine=duration=1", "-shortest"]
TONE = ["-f", "lavfi", "-i", "sine=duration=1"]

MADE_BY_FFMPEG = {
    "mp4": [*VIDEO_AND_TONE, "-c:v", "mpeg4"],
    "mov": [*VIDEO_AND_TONE, "-c:v", "mpeg4", "-f", "mov"],
    "mkv": [*VIDEO_AND_TONE, "-f", "matroska"],
    "webm": [*VIDEO_AND_TONE, "-c:v", "libvpx-vp9", "-c:a", "libopus", "-f", "webm"],
    "avi": [*VIDEO_AND_TONE, "-c:v", "mpeg4", "-c:a", "libmp3lame", "-f", "avi"],
    "flv": [*VIDEO_AND_TONE, "-f", "flv"],
    "mpg": [*VIDEO_AND_TONE, "-c:v", "mpeg1video", "-c:a", "mp2", "-f", "mpeg"],
    "ts": [*VIDEO_AND_TONE, "-f", "mpegts"],
    "m2ts": [*VIDEO_AND_TONE, "-f", "mpegts", "-mpegts_m2ts_mode", "1"],
    "dv": [*VIDEO_AND_TONE, "-target", "pal-dv", "-f", "dv"],
    "mxf": [
        *VIDEO_AND_TONE,
        "-c:v",
        "mpeg2video",
        "-c:a",
        "pcm_s16le",
        "-ar",
        "48000",
        "-f",
        "mxf",
    ],
    "asf": [*VIDEO_AND_TONE, "-f", "asf"],
    "ogv": [*VIDEO_AND_TONE, "-c:v", "libvpx", "-c:a", "libvorbis", "-f", "ogg"],
    "3gp": [*VIDEO_AND_TONE, "-c:v", "mpeg4", "-c:a", "aac", "-ar", "16000", "-f", "3gp"],
    "nut": [*VIDEO_AND_TONE, "-f", "nut"],
    "mp3": [*TONE, "-c:a", "libmp3lame", "-f", "mp3"],
    "mp2": [*TONE, "-c:a", "mp2", "-f", "mp2"],
    "aac": [*TONE, "-c:a", "aac", "-f", "adts"],
    "m4a": [*TONE, "-c:a", "aac", "-f", "ipod"],
    "wav": [*TONE, "-f", "wav"],
    "flac": [*TONE, "-f", "flac"],
    "opus": [*TONE, "-c:a", "libopus", "-f", "opus"],
    "wma": [*TONE, "-c:a", "wmav2", "-f", "asf"],
    "aiff": [*TONE, "-f", "aiff"],
    "ac3": [*TONE, "-c:a", "ac3", "-f", "ac3"],
    "caf": [*TONE, "-f", "caf"],
    "au": [*TONE, "-f", "au"],
    "w64": [*TONE, "-f", "w64"],
    "wv": [*TONE, "-c:a", "wavpack", "-f", "wv"],
    "tta": [*TONE, "-c:a", "tta", "-f", "tta"],
}


@pytest.mark.parametrize("container", sorted(MADE_BY_FFMPEG))
def test_a_real_container_is_recognised(container, tmp_path):
    head = ffmpeg(*MADE_BY_FFMPEG[container], output=tmp_path / f"clip.{container}")
    assert media_type(head[:SNIFF_BYTES]) is not None


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("clip.mp4", b"not really")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "head",
    [
        b"hello, I am not a video\n" * 50,
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"0" * 100,
        b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\0" * 100,
        b"GIF89a" + b"\0" * 100,
        gzip.compress(b"x" * 1000),
        _zip(),
        b"\x7fELF\x02\x01\x01" + b"\0" * 100,
        b"<?xml version='1.0'?><svg/>",
        b"\0" * 4096,
        b"\xff\xff\xff\xff" * 100,
        b"\x47" + b"\0" * 187 + b"\x12" * 400,  # one TS-like byte is not a stream
    ],
    ids=[
        "text",
        "pdf",
        "png",
        "jpeg",
        "gif",
        "gzip",
        "zip",
        "elf",
        "svg",
        "zeros",
        "ff",
        "one-sync-byte",
    ],
)
def test_what_is_not_media_is_refused(head):
    assert media_type(head) is None
