"""One ffmpeg run under watch: a time limit, a stop request, its progress, its last words.

ffmpeg writes its log on stderr and, asked with `-progress pipe:1`, `key=value` progress
lines on stdout (`out_time_us=…` twice a second). A thread drains each pipe, so ffmpeg
never blocks on a full one; the caller's thread checks four times a second whether
ffmpeg has exited, overrun its time limit, or is to be stopped, and hands on how much it
has written (`on_time(seconds or None)`). Whatever the outcome, ffmpeg is not left
running: it is killed (SIGKILL, then reaped) before any exception leaves `run_ffmpeg`,
including one raised by `on_time` itself (a cancelled job: ffmpeg is gone within the
quarter second that follows).
"""

from __future__ import annotations

import collections
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .failures import FfmpegKilled, Interrupted, UnusableMedia, failure, signal_name

_DURATION = re.compile(rb"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
#: stderr lines kept for the error message: enough for ffmpeg's last words, bounded.
_STDERR_LINES = 200
#: How often the caller's thread looks at ffmpeg, in seconds.
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Timeouts:
    """ffmpeg's time limit: a base for reading the file, plus a share of the media's length.

    ffmpeg converts audio at about 200x real time on one core here, so the default of
    0.5 s per media second is a hung or pathological process, not a slow machine.
    """

    base_seconds: float = 30.0
    per_media_second: float = 0.5
    max_seconds: float = 3600.0

    def limit(self, *, header_read: bool, duration: float | None) -> float:
        if not header_read:
            return min(self.base_seconds, self.max_seconds)
        if duration is None:  # a stream that does not say how long it is
            return self.max_seconds
        return min(self.base_seconds + self.per_media_second * duration, self.max_seconds)


class _StderrReader(threading.Thread):
    """Drains ffmpeg's stderr and notes the duration from its header.

    Its end (stderr closed) is also how the caller learns, without polling, that ffmpeg
    has exited.
    """

    def __init__(self, stream) -> None:
        super().__init__(daemon=True, name="ffmpeg-stderr")
        self._stream = stream
        self.lines: collections.deque[bytes] = collections.deque(maxlen=_STDERR_LINES)
        self.header_read = False
        self.duration: float | None = None

    def run(self) -> None:
        for line in self._stream:
            self.lines.append(line)
            if not self.header_read and b"Duration:" in line:
                match = _DURATION.search(line)
                if match:
                    hours, minutes, seconds = match.groups()
                    self.duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
                self.header_read = True  # "Duration: N/A" is a header too
            elif not self.header_read and (b"Stream mapping" in line or b"Output #0" in line):
                self.header_read = True
        self._stream.close()

    def text(self) -> str:
        return b"".join(self.lines).decode("utf-8", "replace")


class _ProgressReader(threading.Thread):
    """Drains ffmpeg's `-progress` lines and keeps the latest output time, in seconds."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True, name="ffmpeg-progress")
        self._stream = stream
        self.out_seconds: float | None = None

    def run(self) -> None:
        for line in self._stream:
            key, _, value = line.strip().partition(b"=")
            if key == b"out_time_us" and value.lstrip(b"-").isdigit():
                self.out_seconds = max(int(value), 0) / 1_000_000
        self._stream.close()


def run_ffmpeg(
    command: Sequence[str],
    *,
    timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen, so sharing it is safe
    should_stop: Callable[[], bool] = lambda: False,
    on_time: Callable[[float | None], None] = lambda seconds: None,
) -> str:
    """Run `command` to its end; its stderr (the last lines).

    Raises UnusableMedia (ffmpeg's own error, or over its time limit), Interrupted
    (`should_stop()` turned true), FfmpegKilled (a signal we did not send), OSError (a
    full disk, or ffmpeg cannot run), and whatever `on_time` raises; ffmpeg is killed
    before any of them leaves.
    """
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    errors, progress = _StderrReader(process.stderr), _ProgressReader(process.stdout)
    errors.start()
    progress.start()
    try:
        while errors.is_alive():
            errors.join(timeout=POLL_SECONDS)
            if errors.is_alive():
                _enforce(errors, timeouts, time.monotonic() - started, should_stop)
            on_time(progress.out_seconds)
        returncode = process.wait()
    finally:
        if process.poll() is None:  # an exception on this thread: never leave ffmpeg behind
            kill(process)
    if returncode < 0:  # a signal; ours (time limit, stop, on_time) were handled above
        raise FfmpegKilled(f"ffmpeg was killed by {signal_name(-returncode)}")
    if returncode != 0:
        raise failure(returncode, errors.text())
    return errors.text()


def _enforce(
    errors: _StderrReader, timeouts: Timeouts, elapsed: float, should_stop: Callable[[], bool]
) -> None:
    limit = timeouts.limit(header_read=errors.header_read, duration=errors.duration)
    if elapsed > limit:
        raise UnusableMedia(
            f"converting took longer than {limit:.0f} s; the file may be damaged",
            "ffmpeg killed",
            kind="timeout",
        )
    if should_stop():
        raise Interrupted("stopping: ffmpeg killed, the job goes back to the queue")


def kill(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()
