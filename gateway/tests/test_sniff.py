"""Containers are recognised by their content: real files made by ffmpeg, and impostors.

The whole table of every format ffmpeg writes is tests/test_media_intake.py (system
tests, through the gateway and the converter); these are the quick ones.
"""

import gzip
import io
import subprocess
import zipfile

import imageio_ffmpeg
import pytest

from gateway_service.sniff import SNIFF_BYTES, sniff
from mp3testing.media import make_clip

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

# Each: whether the clip has a picture (all have a tone), and the codec and container options.
MADE_BY_FFMPEG = {
    "mp4": (True, ["-c:v", "mpeg4"]),
    "mov": (True, ["-c:v", "mpeg4", "-f", "mov"]),
    "mkv": (True, ["-f", "matroska"]),
    "webm": (True, ["-c:v", "libvpx-vp9", "-c:a", "libopus", "-f", "webm"]),
    "avi": (True, ["-c:v", "mpeg4", "-c:a", "libmp3lame", "-f", "avi"]),
    "flv": (True, ["-f", "flv"]),
    "mpg": (True, ["-c:v", "mpeg1video", "-c:a", "mp2", "-f", "mpeg"]),
    "ts": (True, ["-f", "mpegts"]),
    "m2ts": (True, ["-f", "mpegts", "-mpegts_m2ts_mode", "1"]),
    "dv": (True, ["-target", "pal-dv", "-f", "dv"]),
    "mxf": (True, ["-c:v", "mpeg2video", "-c:a", "pcm_s16le", "-ar", "48000", "-f", "mxf"]),
    "asf": (True, ["-f", "asf"]),
    "ogv": (True, ["-c:v", "libvpx", "-c:a", "libvorbis", "-f", "ogg"]),
    "3gp": (True, ["-c:v", "mpeg4", "-c:a", "aac", "-ar", "16000", "-f", "3gp"]),
    "nut": (True, ["-f", "nut"]),
    "mp3": (False, ["-c:a", "libmp3lame", "-f", "mp3"]),
    "mp2": (False, ["-c:a", "mp2", "-f", "mp2"]),
    "aac": (False, ["-c:a", "aac", "-f", "adts"]),
    "m4a": (False, ["-c:a", "aac", "-f", "ipod"]),
    "wav": (False, ["-f", "wav"]),
    "flac": (False, ["-f", "flac"]),
    "opus": (False, ["-c:a", "libopus", "-f", "opus"]),
    "wma": (False, ["-c:a", "wmav2", "-f", "asf"]),
    "aiff": (False, ["-f", "aiff"]),
    "ac3": (False, ["-c:a", "ac3", "-f", "ac3"]),
    "caf": (False, ["-f", "caf"]),
    "au": (False, ["-f", "au"]),
    "w64": (False, ["-f", "w64"]),
    "wv": (False, ["-c:a", "wavpack", "-f", "wv"]),
    "tta": (False, ["-c:a", "tta", "-f", "tta"]),
}


@pytest.mark.parametrize("container", sorted(MADE_BY_FFMPEG))
def test_a_real_container_is_recognised(container, tmp_path):
    picture, args = MADE_BY_FFMPEG[container]
    clip = make_clip(tmp_path / f"clip.{container}", 1, video=picture, args=args)
    head = clip.read_bytes()
    assert sniff(head[:SNIFF_BYTES], ffmpeg=FFMPEG) is not None


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
    assert sniff(head, ffmpeg=FFMPEG) is None


@pytest.mark.parametrize("image", ["png", "jpg", "gif", "bmp", "tiff", "webp"])
def test_a_real_image_is_refused(image, tmp_path):
    path = tmp_path / f"picture.{image}"
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "2"]
        + ([] if image == "gif" else ["-update", "1"])
        + [str(path)],
        check=True,
    )
    assert sniff(path.read_bytes(), ffmpeg=FFMPEG) is None


@pytest.mark.parametrize(
    "text",
    [
        "1\n00:00:01,000 --> 00:00:02,000\nHello\n\n",  # SubRip subtitles
        "WEBVTT\n\n00:01.000 --> 00:02.000\nHello\n",
        "ffconcat version 1.0\nfile '/etc/passwd'\n",  # would make ffmpeg read a file
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n",
        "<!doctype html><html><body><video src=clip.mp4></video></body></html>",
        '{"video": "clip.mp4", "duration": 10}',
    ],
    ids=["srt", "webvtt", "concat-list", "m3u8-playlist", "html", "json"],
)
def test_text_that_ffmpeg_could_follow_or_show_is_refused(text):
    assert sniff(text.encode(), ffmpeg=FFMPEG) is None
