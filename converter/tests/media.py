"""Test media made with ffmpeg's lavfi sources (never committed blobs), and ways to check it."""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

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
