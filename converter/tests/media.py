"""Test media made with ffmpeg's lavfi sources (never committed blobs), and ways to check it."""

from __future__ import annotations

import io
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mp3testing.media import ffmpeg as encode
from mp3testing.media import ffmpeg_exe, make_clip

FFMPEG = ffmpeg_exe()
SECONDS = 3.0


def _video(size: str = "160x120", rate: int = 25, seconds: float = SECONDS) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]


def _tone(sample_rate: int = 44100, seconds: float = SECONDS, stereo: bool = False) -> list[str]:
    channels = "sin(440*2*PI*t)|sin(660*2*PI*t)" if stereo else "sin(440*2*PI*t)"
    source = f"aevalsrc={channels}:sample_rate={sample_rate}:duration={seconds}"
    return ["-f", "lavfi", "-i", source]


@dataclass(frozen=True)
class Sample:
    """How to make one input file, and what the converter must make of it."""

    name: str
    filename: str  # what the uploader called it
    ffmpeg_args: tuple[str, ...] = ()  # inputs and codecs; empty for the hand-made ones
    sample_rate: int | None = 44100  # of the MP3 that must come out; None: none must
    reason: str | None = None  # the failure reason that must come out instead


SAMPLES = {
    sample.name: sample
    for sample in (
        Sample(
            "mp4 h264+aac",
            "clip.mp4",
            (*_video(), *_tone(), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"),
        ),
        Sample(
            "mkv vp9+opus stereo",
            "clip.mkv",
            (
                *_video(),
                *_tone(48000, stereo=True),
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-c:a",
                "libopus",
            ),
            sample_rate=48000,
        ),
        Sample(
            "webm vp8+vorbis",
            "clip.webm",
            (*_video(), *_tone(), "-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libvorbis"),
        ),
        Sample(
            "mov h264+pcm 22 kHz",
            "clip.mov",
            (
                *_video(),
                *_tone(22050),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-c:a",
                "pcm_s16le",
            ),
            sample_rate=22050,
        ),
        Sample(
            "avi mpeg4+mp3",
            "clip.avi",
            (*_video(), *_tone(), "-c:v", "mpeg4", "-c:a", "libmp3lame"),
        ),
        Sample("audio only m4a", "voice.m4a", (*_tone(), "-c:a", "aac", "-f", "mp4")),
        Sample(
            "5.1 surround aac",
            "surround.mp4",
            (
                *_video(),
                *_tone(48000),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-af",
                "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0",
                "-c:a",
                "aac",
            ),
            sample_rate=48000,
        ),
        Sample(
            "96 kHz wav (above what MP3 can hold)",
            "studio.wav",
            (*_tone(96000), "-c:a", "pcm_s16le"),
            sample_rate=48000,
        ),
        Sample(
            "webm named .mp4 (the name lies)",
            "holiday.mp4",
            (
                *_video(),
                *_tone(),
                "-c:v",
                "libvpx",
                "-deadline",
                "realtime",
                "-c:a",
                "libvorbis",
                "-f",
                "webm",
            ),
        ),
        Sample(
            "video without audio",
            "silent.mp4",
            (*_video(), "-c:v", "libx264", "-preset", "ultrafast"),
            sample_rate=None,
            reason="the video has no audio track",
        ),
        Sample(
            "truncated mp4",
            "cut.mp4",
            sample_rate=None,
            reason="the file is incomplete or damaged (was the upload cut off?)",
        ),
        Sample(
            "random bytes",
            "noise.mp4",
            sample_rate=None,
            reason="the file is not a video or audio file that can be read",
        ),
        Sample("zero-length file", "empty.mp4", sample_rate=None, reason="the file is empty"),
    )
}


def make(sample: Sample, folder: Path) -> Path:
    """Write `sample` into `folder` (once; later calls reuse the file)."""
    path = folder / f"{sample.name.replace(' ', '_').replace('.', '')}-{sample.filename}"
    if path.exists():
        return path
    if sample.name == "truncated mp4":
        whole = make(SAMPLES["mp4 h264+aac"], folder).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif sample.name == "random bytes":
        path.write_bytes(random.Random(4).randbytes(300_000))
    elif sample.name == "zero-length file":
        path.write_bytes(b"")
    else:
        fmt = () if "-f" in sample.ffmpeg_args else ("-f", _format(sample.filename))
        encode(*sample.ffmpeg_args, "-shortest", *fmt, str(path))
    return path


def long_clip(folder: Path, seconds: float) -> Path:
    """A clip whose conversion takes a while (about 1 s per 5 min of audio here)."""
    path = folder / f"long-{seconds:.0f}s.mp4"
    if not path.exists():
        codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "48k"]
        make_clip(path, seconds, size="64x64", rate=1, args=codecs)
    return path


def silent_opus(folder: Path, seconds: int) -> Path:
    """`seconds` of silence as Opus in Ogg: an hour is ~1 MB, the cheapest long upload."""
    path = folder / f"silence-{seconds}s.opus"
    if not path.exists():
        encode(
            "-f", "lavfi", "-i", f"anullsrc=r=8000:cl=mono:d={seconds}",
            "-c:a", "libopus", "-b:a", "6k", "-compression_level", "0", "-frame_duration", "120",
            str(path),
        )  # fmt: skip
    return path


#: The container tags of `tagged_video`, as ffmpeg takes them (`-metadata key=value`):
#: characters ffmetadata escapes, a line break, a date.
TAGS = {
    "title": "Sunset; at = sea #1",
    "artist": "Ann Example",
    "album": "Holidays\\2024",
    "date": "2024-05-01",
    "comment": "first line\nsecond line",
}


def tagged_video(folder: Path) -> Path:
    """An MP4 (H.264 + AAC) whose container carries every tag in TAGS."""
    path = folder / "tagged.mp4"
    if not path.exists():
        tags = [arg for key, value in TAGS.items() for arg in ("-metadata", f"{key}={value}")]
        encode(*_video(), *_tone(), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
               *tags, "-shortest", str(path))  # fmt: skip
    return path


def still(folder: Path, size: str = "800x800") -> Path:
    """A still picture (PNG) of `size`, larger than a cover may be."""
    path = folder / f"picture-{size}.png"
    if not path.exists():
        encode("-f", "lavfi", "-i", f"color=c=red:size={size}", "-frames:v", "1", str(path))
    return path


def with_attached_picture(folder: Path, *, video: bool) -> Path:
    """An 800x800 attached picture beside a tone (MP3 with an APIC), or beside a tone and a
    160x120 video (MP4 with a covr), to tell which a cover came from by its size."""
    path = folder / ("covered.mp4" if video else "covered.mp3")
    if path.exists():
        return path
    inputs = [*_tone(), "-i", str(still(folder)), *(_video() if video else [])]
    maps = ["-map", "0:a", "-map", "1:v", *(["-map", "2:v"] if video else [])]
    codecs = ["-c:v:0", "mjpeg", "-disposition:v:0", "attached_pic"]
    if video:
        codecs += ["-c:v:1", "libx264", "-preset", "ultrafast", "-c:a", "aac"]
    else:
        codecs += ["-c:a", "libmp3lame"]
    encode(*inputs, *maps, *codecs, str(path))
    return path


def two_languages(folder: Path) -> Path:
    """An MP4 with two audio tracks: 0 English (mono, default), 1 German (stereo)."""
    path = folder / "languages.mp4"
    if not path.exists():
        encode(*_video(), *_tone(), *_tone(48000, stereo=True), "-map", "0:v", "-map", "1:a",
               "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
               "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=deu",
               "-shortest", str(path))  # fmt: skip
    return path


def noise(folder: Path, volume_db: float, seconds: float = 6.0) -> Path:
    """Stereo pink noise at `volume_db` (0: about -21 LUFS) as AAC in M4A."""
    path = folder / f"noise{volume_db:+g}dB.m4a"
    if not path.exists():
        source = f"anoisesrc=color=pink:sample_rate=44100:duration={seconds}:amplitude=0.5"
        encode("-f", "lavfi", "-i", f"{source},volume={volume_db}dB", "-ac", "2",
               "-c:a", "aac", str(path))  # fmt: skip
    return path


def audio_packets_md5(path: Path) -> str:
    """An MD5 over the first audio stream's packets as stored (no decoding)."""
    result = subprocess.run(
        [FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-c", "copy",
         "-f", "streamhash", "-hash", "md5", "-"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout.strip().rsplit("=", 1)[-1]


def picture(data: bytes) -> tuple[str, tuple[int, int]]:
    """A picture's format (`JPEG`) and size in pixels (width, height), as Pillow reads it."""
    with Image.open(io.BytesIO(data)) as image:
        return image.format, image.size


def ffmpeg_children() -> list[str]:
    """The ffmpeg processes this test process started that are still running."""
    me = str(os.getpid())
    children = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if fields[1] == me and fields[0] != "Z":
                children.append(pid)
        except OSError:
            continue
    return children


def _format(filename: str) -> str:
    suffix = Path(filename).suffix.lstrip(".")
    return {"mkv": "matroska", "m4a": "mp4", "wav": "wav"}.get(suffix, suffix)


def decodes_cleanly(path: Path) -> bool:
    """A valid MP3: ffmpeg decodes all of it without a single error."""
    result = subprocess.run(
        [FFMPEG, "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0 and not result.stderr.strip()
