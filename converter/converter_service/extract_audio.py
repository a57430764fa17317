"""Video file → audio file, as the job's options ask, with ffmpeg: limited, watched, tagged.

The reference decoded the audio to PCM in Python (moviepy's `write_audiofile`) and
re-encoded it: 5x slower than ffmpeg doing it alone. Here ffmpeg reads the file, skips
the video entirely (no video decoding) and encodes the chosen format (mp3common.options:
MP3 at LAME's V2 by default) at the source's sample rate (only when the encoder cannot
take it, e.g. 96 kHz for MP3, ffmpeg picks the nearest it can); more than two channels are
mixed to stereo unless `channels` says otherwise. When the source's track already is what
was asked for, it is copied instead (`-c:a copy`: lossless, and many times faster).

The steps of `extract_audio`:

1. The file is judged with the same probe the gateway used (mp3common.media), and the
   demuxer it named is the one that reads it (`-f`), so a file is never read as something
   else than it was taken as. The audio track is the one `track` names, else the one
   marked default among those this ffmpeg can decode, else the first it can decode (an
   iPhone's spatial-audio track beside its AAC one is skipped).
2. The container's tags are read (tags.py). What ffmpeg is asked to do is decided
   (ffmpeg_args.py: format, quality, track, channels, trim, copy). What would be converted
   (the trimmed part, else the whole file) longer than `max_media_seconds` is refused here,
   before any conversion; when the container does not say its length, ffmpeg stops a
   second past the limit and the result is refused all the same.
3. ffmpeg runs (ffmpeg_process.py), twice with a loudness target (loudness.py: pass 1
   measures, pass 2 applies), under a time limit. Its progress goes to `on_progress(per
   cent, seconds to go)` against the part converted (pass 1 is the first half).
4. The output is read back with mutagen (length, size, sample rate, bitrate); one with no
   audio is a failure; one much shorter than the source says is done, with a warning that
   the file looks cut off. The output keeps the source's timeline: silence where the audio
   starts late or has a gap (`aresample=async=1:first_pts=0`; a copied stream keeps its
   own timestamps), so a transcript's times match the video's.
5. Tags and a cover are written into it (tags.py); they never fail the job.

Failures come out as one of three exceptions (failures.py): `UnusableMedia` (this file
will never convert; its `reason` is meant for the owner's mail), `Interrupted` (the worker
is stopping; the job should be handed back) and `FfmpegKilled` (a signal, most likely the
out-of-memory killer, ended ffmpeg: a `TransientError`, retried). OSError (e.g. a full
disk) is a transient problem of this machine too. Any exception that `on_progress` raises
(the job was cancelled) ends the work at once, ffmpeg killed first.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import mutagen
from mutagen import MutagenError

from mp3common import media
from mp3common.options import DEFAULT_OPTIONS, ConversionOptions

from . import ffmpeg_args, loudness, tags
from .failures import (
    EMPTY_AUDIO,
    FfmpegKilled,
    Interrupted,
    UnusableMedia,
    not_media,
    signal_name,
    starts_past_the_end,
    too_long,
    undecodable,
)
from .ffmpeg_args import Plan, ffmpeg_command
from .ffmpeg_process import Timeouts, run_ffmpeg

log = logging.getLogger(__name__)

#: Reports how far the work is: (per cent done 0-100, seconds to go), either None when not
#: known (called then too, about four times a second, so that it can check the job).
ProgressReport = Callable[[float | None, float | None], None]

#: A file is flagged as cut off when its audio is shorter than the container says by
#: both of these: seconds, and a share of the whole.
CUT_OFF_MIN_SECONDS = 1.0
CUT_OFF_MIN_SHARE = 0.1
#: Opus is always decoded at 48 kHz (mutagen does not name a rate for it).
OPUS_SAMPLE_RATE = 48000
SILENT = "the audio is silent, so its loudness was left as it is"
#: EBU R128 measures loudness over blocks of 0.4 s: a shorter sound has none to measure.
SHORTEST_MEASURABLE_SECONDS = 0.4
TOO_SHORT = "the audio is shorter than 0.4 s, too short to measure; its loudness was left as is"
NOT_MEASURED = "the loudness could not be measured, so it was left as it is"


@dataclass(frozen=True)
class Audio:
    """What was written: the output's length as a player will see it (seconds), its size
    (bytes), sample rate (Hz) and bitrate (bits a second)."""

    duration_seconds: float
    size: int
    sample_rate: int
    bitrate: int
    #: The source's audio stream that was converted (None only if ffmpeg listed none).
    track: media.Stream | None = None
    #: Something the owner should know about a finished output (e.g. the file looks cut
    #: off, or silence could not be normalised).
    warning: str | None = None
    #: The source's audio stream went in as it was (no re-encoding).
    copied: bool = False
    #: The tags written ({"title", "artist", "album", "date", "comment"}, those known).
    tags: dict[str, str] = field(default_factory=dict)
    cover: bool = False


def extract_audio(
    source: Path,
    target: Path,
    *,
    ffmpeg: str,
    options: ConversionOptions = DEFAULT_OPTIONS,
    filename: str | None = None,
    timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen, so sharing it is safe
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: ProgressReport = lambda per_cent, eta_seconds: None,
    max_media_seconds: float | None = None,
) -> Audio:
    """Write `source`'s audio to `target` as `options` ask; raise UnusableMedia if it can't.

    `filename`: what the uploader called the file (the title when the file has none).
    """
    if source.is_file() and source.stat().st_size == 0:
        raise UnusableMedia("the file is empty", kind="empty_file")
    found = _judge(source, ffmpeg, timeouts, _polling(should_stop, on_progress))
    source_tags = tags.read_source_tags(ffmpeg, source, demuxer=found.demuxer, filename=filename)
    plan = ffmpeg_args.plan(
        found,
        options,
        max_seconds=max_media_seconds,
        metadata=tags.ffmpeg_metadata(options.output, source_tags),
    )
    started = time.monotonic()
    run = functools.partial(run_ffmpeg, timeouts=timeouts, should_stop=should_stop)
    loudness_warning = _convert(source, target, plan, ffmpeg, run, Progress(on_progress, plan))
    audio = _check_output(target, plan)
    if plan.copy and audio.warning:
        # A copied stream keeps its own timeline: audio that starts late, or has gaps, comes
        # out shorter than the file. Encoded, it is put on the file's timeline instead.
        log.info("the copied audio is %.1f s of the file's %.1f s: encoding it instead",
                 audio.duration_seconds, plan.expected_seconds or 0)  # fmt: skip
        plan = replace(plan, copy=False)
        loudness_warning = _convert(source, target, plan, ffmpeg, run, Progress(on_progress, plan))
        audio = _check_output(target, plan)
    if max_media_seconds and audio.duration_seconds > max_media_seconds:
        raise too_long(audio.duration_seconds, max_media_seconds, trimmed=options.trimmed)
    log.info(
        "ffmpeg wrote %.1f s of %s (%d bytes, %d Hz%s) in %.2f s",
        audio.duration_seconds,
        options.format,
        audio.size,
        audio.sample_rate,
        ", copied" if plan.copy else "",
        time.monotonic() - started,
    )
    on_progress(100.0, 0.0)
    warning = "; ".join(filter(None, (audio.warning, loudness_warning))) or None
    audio = replace(audio, warning=warning, copied=plan.copy, tags=source_tags)
    return _with_tags(audio, target, options, source, found, ffmpeg, on_progress)


def _with_tags(
    audio: Audio,
    target: Path,
    options: ConversionOptions,
    source: Path,
    found: media.Probe,
    ffmpeg: str,
    on_progress: ProgressReport,
) -> Audio:
    """The output tagged (`audio.tags`) and given its cover; neither fails the job."""
    cover = tags.make_cover(ffmpeg, source, found, target.with_name("cover.jpg"))
    on_progress(None, None)
    has_cover = tags.write_tags(target, options.output, audio.tags, cover)
    return replace(audio, size=target.stat().st_size, cover=has_cover)  # the size, tagged


def _polling(should_stop: Callable[[], bool], on_progress: ProgressReport) -> Callable[[], bool]:
    """`should_stop` for a step that has no progress to tell (the probe): it reports
    nothing new, but gives `on_progress` its chance to check the job."""

    def poll() -> bool:
        on_progress(None, None)
        return should_stop()

    return poll


class Progress:
    """ffmpeg's output time in one pass → per cent done and seconds to go over all passes
    (the eta from the time taken so far), handed to `on_progress`."""

    def __init__(self, on_progress: ProgressReport, plan: Plan) -> None:
        self._report = on_progress
        self._span = plan.span
        self._passes = plan.passes
        self._started = time.monotonic()

    def of_pass(self, number: int) -> Callable[[float | None], None]:
        def on_time(out_seconds: float | None) -> None:
            if not self._span or out_seconds is None:
                self._report(None, None)
                return
            done = (number + min(out_seconds / self._span, 1.0)) / self._passes
            elapsed = time.monotonic() - self._started
            self._report(100.0 * done, elapsed * (1.0 - done) / done if done > 0 else None)

        return on_time


#: `run_ffmpeg` with this job's time limit and stop: (command, on_time=…) → stderr.
Run = Callable[..., str]


def _convert(
    source: Path, target: Path, plan: Plan, ffmpeg: str, run: Run, progress: Progress
) -> str | None:
    """ffmpeg's passes; a warning for the owner when the loudness was left as it was."""
    loudnorm, warning = None, None
    if plan.options.normalize is not None:
        loudnorm, warning = _measure(source, plan, ffmpeg, run, progress.of_pass(0))
    command = ffmpeg_command(ffmpeg, source, target, plan, loudnorm=loudnorm)
    run(command, on_time=progress.of_pass(plan.passes - 1))
    return warning


def _measure(
    source: Path, plan: Plan, ffmpeg: str, run: Run, on_time: Callable[[float | None], None]
) -> tuple[str | None, str | None]:
    """Pass 1: the loudness filter for pass 2, or None and why not."""
    target_lufs = plan.options.normalize
    measuring = loudness.measure_filter(target_lufs)
    stderr = run(ffmpeg_command(ffmpeg, source, None, plan, loudnorm=measuring), on_time=on_time)
    measured = loudness.parse_measurement(stderr)
    if measured is None:
        log.warning("loudnorm printed no measurement: %s", stderr[-500:])
        return None, NOT_MEASURED
    if measured.silent:
        short = plan.span is not None and plan.span < SHORTEST_MEASURABLE_SECONDS
        return None, TOO_SHORT if short else SILENT
    log.info("loudness measured: %s", measured)
    return loudness.normalize_filter(target_lufs, measured, plan.sample_rate), None


def _judge(source: Path, ffmpeg: str, timeouts: Timeouts, poll: Callable[[], bool]) -> media.Probe:
    """The probe of the whole file; UnusableMedia when it is not media or has no audio
    this ffmpeg can decode, Interrupted when a stop was asked meanwhile."""
    limit = timeouts.limit(header_read=False, duration=None)
    try:
        found = media.probe(source, ffmpeg=ffmpeg, timeout=limit, should_stop=poll)
    except subprocess.TimeoutExpired as exc:
        raise UnusableMedia(
            f"reading the file took longer than {limit:.0f} s; the file may be damaged",
            "ffmpeg probe killed",
            kind="timeout",
        ) from exc
    except media.ProbeStopped as exc:
        raise Interrupted("stopping: ffmpeg killed, the job goes back to the queue") from exc
    if found.killed_by_signal:
        raise FfmpegKilled(f"ffmpeg's probe was killed by {signal_name(found.killed_by_signal)}")
    if not found.is_media:
        raise not_media(f"format {found.format or 'unknown'}, score {found.score}")
    audio = [stream for stream in found.streams if stream.kind == "audio"]
    if found.streams and not audio:
        raise UnusableMedia("the video has no audio track", kind="no_audio")
    if audio and found.audio_track() is None:
        raise undecodable(f"audio codecs: {', '.join(stream.codec for stream in audio)}")
    return found


def _cut_off(duration: float, expected: float | None) -> str | None:
    if expected is None or expected <= 0:
        return None
    missing = expected - duration
    if missing >= CUT_OFF_MIN_SECONDS and missing >= CUT_OFF_MIN_SHARE * expected:
        return f"only {duration:.1f} s of {expected:.1f} s could be read; the file looks cut off"
    return None


def _check_output(target: Path, plan: Plan) -> Audio:
    """The output as a player reads it (mutagen). One with no audio is a failure: the
    track held nothing decodable, or the trim started past the end of the audio."""
    size = target.stat().st_size if target.exists() else 0
    try:
        found = mutagen.File(target) if size else None  # None: not a format mutagen knows
    except MutagenError as exc:
        log.warning("mutagen cannot read the %s output: %r", plan.options.format, exc)
        found = None
    info = found.info if found is not None else None
    if info is None or info.length <= 0:
        if plan.start:
            raise starts_past_the_end(plan.start, None)
        raise UnusableMedia(EMPTY_AUDIO, kind="empty_audio")
    return Audio(
        duration_seconds=round(info.length, 3),
        size=size,
        sample_rate=getattr(info, "sample_rate", None) or OPUS_SAMPLE_RATE,
        bitrate=info.bitrate,
        track=plan.track,
        warning=_cut_off(info.length, plan.expected_seconds),
    )
