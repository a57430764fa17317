"""Video file → MP3 file with the ffmpeg binary, under a time limit, with reasons people read.

The reference decoded the audio to PCM in Python (moviepy's `write_audiofile`) and
re-encoded it: 5x slower than ffmpeg doing it alone. Here ffmpeg reads the file, skips
the video entirely (no video decoding) and encodes MP3 with libmp3lame at the source's
sample rate (only when LAME cannot take it, e.g. 96 kHz, ffmpeg picks the nearest it can)
and channel layout (more than two channels are mixed down to stereo).

First the file is judged with the same probe the gateway used (mp3common.media), and the
demuxer it named is the one that reads it (`-f`), so a file is never read as something
else than it was taken as. The audio track is the one marked default among those this
ffmpeg can decode, else the first it can decode (an iPhone's spatial-audio track beside
its AAC one is skipped). The MP3 keeps the source's timeline: silence where the audio
starts late or has a gap (`aresample=async=1:first_pts=0`), so a transcript's times match
the video's. A file whose audio ends well before its container says it should is done,
with a warning that it looks cut off.

A file longer than `max_media_seconds` (MAX_MEDIA_SECONDS) is refused before any
conversion when its container says how long it is; when it does not, ffmpeg stops a second
past the limit (`-t`) and the result is refused all the same: an hour of silent Opus is
1.4 MB to upload and 14 MB of MP3 to make.

Failures come out as one of three exceptions: `UnusableMedia` (this file will never
convert; its `reason` is meant for the owner's mail), `Interrupted` (the worker is
stopping; the job should be handed back) and `FfmpegKilled` (a signal, most likely the
out-of-memory killer, ended ffmpeg: the machine's failure, a `TransientError`, retried).
OSError (e.g. a full disk) is a transient problem of this machine too.
"""

from __future__ import annotations

import collections
import logging
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mutagen import MutagenError
from mutagen.mp3 import MP3

from mp3common import media
from mp3common.transient import TransientError

log = logging.getLogger(__name__)

_DURATION = re.compile(rb"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
#: ffmpeg's own words → what the owner of the file is told, and its kind for the metrics;
#: the first match wins.
_NOT_MEDIA = "the file is not a video or audio file that can be read"
_UNDECODABLE = "the audio track is in a format that cannot be decoded"
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
#: stderr lines kept for the error message: enough for ffmpeg's last words, bounded.
_STDERR_LINES = 200


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


def too_long(seconds: float, limit: float) -> UnusableMedia:
    return UnusableMedia(
        f"the file is {_hours(seconds)} long; this service converts at most "
        f"{_hours(limit)} per file",
        f"{seconds:.0f} s > MAX_MEDIA_SECONDS {limit:.0f}",
        kind="too_long",
    )


def _hours(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min" if seconds >= 60 else f"{seconds:.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes % 60 else f"{minutes // 60} h"


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


@dataclass(frozen=True)
class Audio:
    """What was written: the MP3's length as a player will see it, and its size."""

    duration_seconds: float
    size: int
    sample_rate: int
    bitrate: int
    #: The source's audio stream that was converted (None only if ffmpeg listed none).
    track: media.Stream | None = None
    #: Something the owner should know about a finished MP3 (e.g. the file looks cut off).
    warning: str | None = None


#: A file is flagged as cut off when its audio is shorter than the container says by
#: both of these: seconds, and a share of the whole.
CUT_OFF_MIN_SECONDS = 1.0
CUT_OFF_MIN_SHARE = 0.1


class _StderrReader(threading.Thread):
    """Drains ffmpeg's stderr (so it never blocks on a full pipe) and notes the duration.

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


def ffmpeg_command(
    ffmpeg: str,
    source: Path,
    target: Path,
    quality_args: Sequence[str],
    *,
    demuxer: str | None = None,
    track: int | None = None,
    max_seconds: float | None = None,
) -> list[str]:
    """`track`: the stream index to convert; None = the first audio track (an error if
    there is none, with ffmpeg's reason). `max_seconds`: stop one second past it (the
    result is then refused as too long)."""
    return [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-nostats",
        *(["-f", demuxer] if demuxer else []),
        "-i",
        f"file:{source}",
        "-map",
        "0:a:0" if track is None else f"0:{track}",
        "-af",
        "aresample=async=1:first_pts=0",  # the source's timeline: silence where none
        "-vn",
        "-sn",
        "-dn",
        "-c:a",
        "libmp3lame",
        *quality_args,
        *(["-t", f"{max_seconds + 1:g}"] if max_seconds else []),
        "-f",
        "mp3",
        "-y",
        str(target),
    ]


def extract_audio(
    source: Path,
    target: Path,
    *,
    ffmpeg: str,
    quality_args: Sequence[str] = ("-q:a", "2"),
    timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen, so sharing it is safe
    should_stop: Callable[[], bool] = lambda: False,
    max_media_seconds: float | None = None,
) -> Audio:
    """Write `source`'s audio track to `target` as MP3; raise UnusableMedia if it can't."""
    if source.is_file() and source.stat().st_size == 0:
        raise UnusableMedia("the file is empty", kind="empty_file")
    started = time.monotonic()
    found = _judge(source, ffmpeg, timeouts.limit(header_read=False, duration=None), should_stop)
    track = found.audio_track()
    if max_media_seconds and (found.duration_seconds or 0) > max_media_seconds:
        raise too_long(found.duration_seconds, max_media_seconds)
    process = subprocess.Popen(
        ffmpeg_command(
            ffmpeg,
            source,
            target,
            quality_args,
            demuxer=found.demuxer,
            track=track.index if track else None,
            max_seconds=max_media_seconds,
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    reader = _StderrReader(process.stderr)
    reader.start()
    try:
        while reader.is_alive():
            reader.join(timeout=0.25)
            limit = timeouts.limit(header_read=reader.header_read, duration=reader.duration)
            if reader.is_alive() and time.monotonic() - started > limit:
                _kill(process)
                raise UnusableMedia(
                    f"converting took longer than {limit:.0f} s; the file may be damaged",
                    "ffmpeg killed",
                    kind="timeout",
                )
            if reader.is_alive() and should_stop():
                _kill(process)
                raise Interrupted("stopping: ffmpeg killed, the job goes back to the queue")
        returncode = process.wait()
    finally:
        if process.poll() is None:  # an exception on this thread: never leave ffmpeg behind
            _kill(process)
    elapsed = time.monotonic() - started
    if returncode < 0:  # a signal; ours (time limit, stop) were handled above
        raise FfmpegKilled(f"ffmpeg was killed by {_signal_name(-returncode)}")
    if returncode != 0:
        raise _failure(returncode, reader.text())
    audio = _check_output(target, track=track, expected_seconds=found.duration_seconds)
    if max_media_seconds and audio.duration_seconds > max_media_seconds:
        raise too_long(audio.duration_seconds, max_media_seconds)  # the container did not say
    log.info(
        "ffmpeg wrote %.1f s of MP3 (%d bytes, %d Hz) in %.2f s",
        audio.duration_seconds,
        audio.size,
        audio.sample_rate,
        elapsed,
    )
    return audio


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _kill(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def _failure(returncode: int, stderr: str) -> Exception:
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


def _judge(source: Path, ffmpeg: str, limit: float, should_stop: Callable[[], bool]) -> media.Probe:
    """The probe of the whole file; UnusableMedia when it is not media or has no audio
    this ffmpeg can decode, Interrupted when a stop was asked meanwhile."""
    try:
        found = media.probe(source, ffmpeg=ffmpeg, timeout=limit, should_stop=should_stop)
    except subprocess.TimeoutExpired as exc:
        raise UnusableMedia(
            f"reading the file took longer than {limit:.0f} s; the file may be damaged",
            "ffmpeg probe killed",
            kind="timeout",
        ) from exc
    except media.ProbeStopped as exc:
        raise Interrupted("stopping: ffmpeg killed, the job goes back to the queue") from exc
    if found.killed_by_signal:
        raise FfmpegKilled(f"ffmpeg's probe was killed by {_signal_name(found.killed_by_signal)}")
    if not found.is_media:
        detail = f"format {found.format or 'unknown'}, score {found.score}"
        raise UnusableMedia(_NOT_MEDIA, detail, kind="not_media")
    audio = [stream for stream in found.streams if stream.kind == "audio"]
    if found.streams and not audio:
        raise UnusableMedia("the video has no audio track", kind="no_audio")
    if audio and found.audio_track() is None:
        codecs = ", ".join(stream.codec for stream in audio)
        raise UnusableMedia(_UNDECODABLE, f"audio codecs: {codecs}", kind="codec")
    return found


def _cut_off(duration: float, expected: float | None) -> str | None:
    if expected is None or expected <= 0:
        return None
    missing = expected - duration
    if missing >= CUT_OFF_MIN_SECONDS and missing >= CUT_OFF_MIN_SHARE * expected:
        return f"only {duration:.1f} s of {expected:.1f} s could be read; the file looks cut off"
    return None


def _check_output(
    target: Path, *, track: media.Stream | None = None, expected_seconds: float | None = None
) -> Audio:
    """A zero-length or frame-less MP3 is a failure: the audio track held nothing decodable."""
    size = target.stat().st_size if target.exists() else 0
    if size == 0:
        raise UnusableMedia("the audio track is empty or could not be decoded", kind="empty_audio")
    try:
        info = MP3(target).info
    except MutagenError as exc:
        raise UnusableMedia(
            "the audio track is empty or could not be decoded", str(exc), kind="empty_audio"
        ) from exc
    if info.length <= 0:
        raise UnusableMedia("the audio track is empty or could not be decoded", kind="empty_audio")
    return Audio(
        duration_seconds=round(info.length, 3),
        size=size,
        sample_rate=info.sample_rate,
        bitrate=info.bitrate,
        track=track,
        warning=_cut_off(info.length, expected_seconds),
    )
