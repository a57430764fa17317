"""Test media made by ffmpeg from its lavfi sources (never committed blobs): one clip maker,
and ffmpeg's own loudness meter to check what came out.

ffmpeg is the one imageio-ffmpeg brings (the dev venv has it, with the converter's
requirements).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path


@cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*args: str, timeout: float = 300) -> None:
    """Run ffmpeg quietly with `args` (inputs, options, output); raise if it fails."""
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
        timeout=timeout,
    )


def make_clip(
    path: Path,
    seconds: float = 2.0,
    *,
    size: str = "160x120",
    rate: int = 25,
    video: bool = True,
    audio: bool = True,
    tone: str = "sine=frequency=440:sample_rate=44100",
    args: Sequence[str] = (),
) -> Path:
    """A test-pattern video (`testsrc2`) with a tone, or either alone; `args` are the codec
    and container options (ffmpeg picks them from the suffix otherwise). Returns `path`."""
    inputs: list[str] = []
    if video:
        inputs += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"{tone}:duration={seconds}"]
    assert inputs, "a clip needs video or audio"
    ffmpeg(*inputs, *args, str(path))
    return path


RAW_SIZE, RAW_RATE = "640x480", 25
RAW_FRAME_BYTES = 640 * 480 * 3 // 2  # yuv420p


def raw_video(path: Path, megabytes: float) -> Path:
    """A large file made in a second or two: uncompressed video (about `megabytes` MB) with
    a tone, in Matroska. Its length in seconds is `raw_video_seconds(megabytes)`."""
    frames = raw_video_frames(megabytes)
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={RAW_SIZE}:rate={RAW_RATE},trim=end_frame={frames}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={frames / RAW_RATE}",
        "-c:v", "rawvideo", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", "-shortest",
        str(path),
    )  # fmt: skip
    return path


def raw_video_frames(megabytes: float) -> int:
    return int(megabytes * 1_000_000) // RAW_FRAME_BYTES + 1


def raw_video_seconds(megabytes: float) -> float:
    return raw_video_frames(megabytes) / RAW_RATE


def loudness(path: Path) -> float:
    """The file's integrated loudness in LUFS, as ffmpeg's EBU R128 meter (`ebur128`) reads it."""
    run = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128", "-f", "null",
         "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", run.stderr)[-1])


def decode(path: Path) -> str:
    """ffmpeg's report (stderr) on decoding all of `path`; the test fails if it cannot."""
    run = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return run.stderr
