"""Test media made by ffmpeg from its lavfi sources (never committed blobs): one clip maker.

ffmpeg is the one imageio-ffmpeg brings (the dev venv has it, with the converter's
requirements).
"""

from __future__ import annotations

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
