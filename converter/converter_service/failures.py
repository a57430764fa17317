"""How a conversion fails: three exceptions, each with its own fate for the job.

- `UnusableMedia`: this file, with these options, will never convert. Its `reason` is
  written for the owner's mail and `/status`; its `kind` is one word for the failure
  counter's label (`no_audio`, `not_media`, `damaged`, `codec`, `too_long`, `trim`,
  `track`, `timeout`, …); `detail` goes to the log only.
- `Interrupted`: the worker is stopping; ffmpeg was killed and the job goes back to the
  queue for another converter.
- `FfmpegKilled`: a signal we did not send (the out-of-memory killer's SIGKILL) ended
  ffmpeg: the machine's failure, not the file's, so a `TransientError` (retried).

`failure(returncode, stderr)` turns ffmpeg's own last words into one of them (or an
OSError for a full disk, itself transient).
"""

from __future__ import annotations

import signal

from mp3common.options import clock
from mp3common.transient import TransientError

_NOT_MEDIA = "the file is not a video or audio file that can be read"
_UNDECODABLE = "the audio track is in a format that cannot be decoded"
EMPTY_AUDIO = "the audio track is empty or could not be decoded"
#: ffmpeg's own words → what the owner of the file is told, and its kind for the metrics;
#: the first match wins.
_REASONS = (
    (
        ("matches no streams", "does not contain any stream"),
        "the video has no audio track",
        "no_audio",
    ),
    (
        ("moov atom not found", "end of file", "truncat"),
        "the file is incomplete or damaged (was the upload cut off?)",
        "damaged",
    ),
    (
        ("invalid data found when processing input", "could not find codec parameters"),
        _NOT_MEDIA,
        "not_media",
    ),
    (
        (
            "decoder not found",
            "no decoder found",
            "unknown codec",
            "unsupported codec",
            "error while opening decoder",
        ),
        _UNDECODABLE,
        "codec",
    ),
    # A guess on a few bytes that the rest of the file did not bear out.
    (("misdetection possible",), _NOT_MEDIA, "not_media"),
)


class UnusableMedia(Exception):
    """The file can never be converted; `reason` says why, for a person.

    `kind` names the reason in a word, for the failure counter's label.
    """

    def __init__(self, reason: str, detail: str = "", *, kind: str = "unconvertible") -> None:
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.kind = kind


class Interrupted(Exception):
    """The worker is stopping; ffmpeg was killed and the job should be handed back."""


class FfmpegKilled(TransientError):
    """A signal we did not send ended ffmpeg (the OOM killer's SIGKILL, say): not the file's
    fault, so the job is tried again."""


def not_media(detail: str) -> UnusableMedia:
    return UnusableMedia(_NOT_MEDIA, detail, kind="not_media")


def undecodable(detail: str) -> UnusableMedia:
    return UnusableMedia(_UNDECODABLE, detail, kind="codec")


def too_long(seconds: float, limit: float, *, trimmed: bool = False) -> UnusableMedia:
    """Over the media-length limit (`trimmed`: the part between start and end is)."""
    what = "the part of the file to convert is" if trimmed else "the file is"
    return UnusableMedia(
        f"{what} {_hours(seconds)} long; this service converts at most {_hours(limit)} per file",
        f"{seconds:.0f} s > the limit of {limit:.0f} s",
        kind="too_long",
    )


def starts_past_the_end(start: float, duration: float | None) -> UnusableMedia:
    length = f"; the file is {clock(round(duration, 3))} long" if duration else ""
    return UnusableMedia(
        f"the trim starts at {clock(start)}, past the end of the audio{length}",
        kind="trim",
    )


def _hours(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min" if seconds >= 60 else f"{seconds:.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes % 60 else f"{minutes // 60} h"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def failure(returncode: int, stderr: str) -> Exception:
    """What an ffmpeg that exited with `returncode` (> 0) means, from its stderr."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if any("no space left on device" in line.lower() for line in lines):
        return OSError(f"ffmpeg: no space left on device (exit {returncode})")
    for needles, reason, kind in _REASONS:
        for line in lines:
            if any(needle in line.lower() for needle in needles):
                return UnusableMedia(reason, _detail(line), kind=kind)
    return UnusableMedia("the file could not be converted", _detail(lines[-1] if lines else ""))


def _detail(line: str) -> str:
    """One ffmpeg line for the log, without its `[in#0 @ 0x…]` prefix; never the whole dump."""
    if line.startswith("[") and "] " in line:
        line = line.split("] ", 1)[1]
    return f"ffmpeg: {line[:300]}"
