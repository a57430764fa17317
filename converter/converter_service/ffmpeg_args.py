"""A job's options and its file's probe → one conversion `Plan` → ffmpeg's arguments.

Pure logic, no ffmpeg run: every decision about what ffmpeg is asked to do is made here,
where it can be tested in milliseconds. Times are seconds (floats), sample rates Hz.

What each option does to the command (the option names are mp3common.options'):

- `format`, `quality`: the catalog's encoder and quality arguments (`-c:a libopus -b:a
  96k`) and muxer (`-f opus`); `-c:a copy` instead, and no audio filter, when the source's
  track already is the format's codec, no option needs decoding (`options.copies`), and it
  has at most two channels (a copy cannot mix 5.1 down to stereo, as the default does);
- `track`: `-map 0:<stream>`, the Nth audio track (counting from 0, as ffmpeg's `0:a:N`)
  or the first in that language; UnusableMedia (kind `track`) naming the tracks the file
  has when there is none such;
- `channels`: the layout mixed to (`aformat=channel_layouts=mono` in the filter chain,
  ahead of loudnorm, so that the loudness is measured on what is written); without it a
  source of more than two channels is mixed to stereo;
- `start`, `end`: input seeking (`-ss start` before `-i`: only the audio from there is
  read and decoded) and `-t end-start`;
- `normalize`: loudnorm in the filter chain (`loudness.py`), then `aresample` back to the
  source's sample rate.

Always: `-map_metadata -1 -map_chapters -1` (tags are written afterwards, tags.py), the
video, subtitles and data are never decoded (`-vn -sn -dn`), the demuxer the probe named
is forced (`-f`), the source's timeline is kept (`aresample=async=1:first_pts=0`: silence
where the audio starts late or has a gap), and ffmpeg reports its progress on stdout
(`-progress pipe:1 -stats_period 0.5`).

The media-length limit counts what is converted: the trimmed part, else the whole file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mp3common import media
from mp3common.options import ConversionOptions

from .failures import UnusableMedia, starts_past_the_end, too_long, undecodable

#: The timeline filter: the output starts at the source's time 0 (silence where the audio
#: starts late) and gaps stay gaps, so a transcript's times match the video's.
TIMELINE_FILTER = "aresample=async=1:first_pts=0"
#: The sample rate loudnorm's output is brought back to when the source's is not known.
FALLBACK_SAMPLE_RATE = 48000


@dataclass(frozen=True)
class Plan:
    """One conversion, decided before ffmpeg runs."""

    options: ConversionOptions
    #: The audio stream read; None only when the probe listed no streams (then ffmpeg's
    #: first audio stream, `0:a:0`).
    track: media.Stream | None
    #: The demuxer the probe named (`-f` before `-i`), so the file is read as judged.
    demuxer: str | None
    #: The track goes into the output as it is (`-c:a copy`).
    copy: bool
    #: Where reading starts (`-ss`), None for the beginning.
    start: float | None
    #: How much is written at most (`-t`): the trim, or one second past the limit.
    length: float | None
    #: How long the part converted is (seconds; the end given, when the file does not say
    #: its length), None when unknown: what progress is measured against.
    span: float | None
    #: The channel layout to mix to ("mono", "stereo"), None to keep the source's.
    layout: str | None
    #: The file's length as its container says (seconds), None when it does not.
    source_seconds: float | None = None
    #: Tags ffmpeg writes itself (`-metadata`), for formats mutagen cannot tag (WAV).
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def map_spec(self) -> str:
        return "0:a:0" if self.track is None else f"0:{self.track.index}"

    @property
    def expected_seconds(self) -> float | None:
        """How long the output should be, when the file says how long it is."""
        return self.span if self.source_seconds is not None else None

    @property
    def sample_rate(self) -> int:
        """The source's sample rate, which the output keeps (the encoder permitting)."""
        return (self.track.sample_rate if self.track else None) or FALLBACK_SAMPLE_RATE

    @property
    def passes(self) -> int:
        """ffmpeg runs: a loudness target takes a measuring pass first."""
        return 2 if self.options.normalize is not None else 1


def plan(
    probe: media.Probe,
    options: ConversionOptions,
    *,
    max_seconds: float | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Plan:
    """The conversion of the probed file with `options`, within `max_seconds` of media.

    Raises UnusableMedia when the chosen track is not there or cannot be decoded, when the
    trim starts past the end, or when what would be converted is over the limit.
    """
    track = choose_track(probe, options.track)
    start = options.start or None
    if start is not None and probe.duration_seconds is not None:
        if start >= probe.duration_seconds:
            raise starts_past_the_end(start, probe.duration_seconds)
    span = options.span(probe.duration_seconds)
    # Without the file's length, an end is only an upper bound: `-t` and the check of the
    # result enforce the limit then.
    if max_seconds and probe.duration_seconds is not None and span > max_seconds:
        raise too_long(span, max_seconds, trimmed=options.trimmed)
    return Plan(
        options=options,
        track=track,
        demuxer=probe.demuxer,
        copy=_copies(options, track),
        start=start,
        length=_length(start or 0.0, options.end, max_seconds),
        span=span,
        layout=_layout(options, track),
        source_seconds=probe.duration_seconds,
        metadata=tuple((metadata or {}).items()),
    )


def choose_track(probe: media.Probe, choice: int | str | None) -> media.Stream | None:
    """The audio stream `choice` names: its number among the audio streams (0-based) or
    its language; None chooses the default track (`Probe.audio_track`)."""
    audio = [stream for stream in probe.streams if stream.kind == "audio"]
    if choice is None or not audio:
        return probe.audio_track()
    if isinstance(choice, int):
        chosen = audio[choice] if choice < len(audio) else None
    else:
        chosen = next((s for s in audio if (s.language or "").lower() == choice), None)
    if chosen is None:
        raise UnusableMedia(
            f"the file has no audio track {choice!r}; it has {_listing(audio)}",
            f"track option {choice!r}",
            kind="track",
        )
    if not chosen.decodable:
        raise undecodable(f"audio track {choice!r}: codec {chosen.codec}")
    return chosen


def _listing(audio: Sequence[media.Stream]) -> str:
    """`0 (eng, aac), 1 (deu, aac)`: each track's number, language and codec."""
    return ", ".join(
        f"{number} ({', '.join(filter(None, (stream.language, stream.codec)))})"
        for number, stream in enumerate(audio)
    )


def _length(start: float, end: float | None, max_seconds: float | None) -> float | None:
    """`-t`: the trim's length, but never more than a second past the limit (a file whose
    container does not say its length is stopped there, and then refused)."""
    candidates = [end - start if end is not None else math.inf]
    if max_seconds:
        candidates.append(max_seconds + 1)
    length = min(candidates)
    return None if math.isinf(length) else length


def _copies(options: ConversionOptions, track: media.Stream | None) -> bool:
    if track is None or not options.copies(track.codec):
        return False
    return (track.channels or 0) <= 2


def _layout(options: ConversionOptions, track: media.Stream | None) -> str | None:
    if options.channels:
        return options.channels
    if track is not None and (track.channels or 0) > 2:
        return "stereo"
    return None


def audio_filters(plan: Plan, loudnorm: str | None = None) -> str:
    """The `-af` chain: the timeline, the channel layout, the loudness filter."""
    chain = [TIMELINE_FILTER]
    if plan.layout:
        chain.append(f"aformat=channel_layouts={plan.layout}")
    if loudnorm:
        chain.append(loudnorm)
    return ",".join(chain)


def ffmpeg_command(
    ffmpeg: str, source: Path, target: Path | None, plan: Plan, *, loudnorm: str | None = None
) -> list[str]:
    """ffmpeg's arguments for `plan`; `loudnorm` is the loudness filter of this pass.

    `target` None is a measuring pass: everything is read and filtered, nothing written.
    """
    return [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-nostats",
        *("-progress", "pipe:1", "-stats_period", "0.5"),
        *input_args(source, plan.demuxer, start=plan.start),
        *("-map", plan.map_spec, "-map_metadata", "-1", "-map_chapters", "-1"),
        *("-vn", "-sn", "-dn"),
        *_codec_args(plan, loudnorm, measuring=target is None),
        *(["-t", seconds(plan.length)] if plan.length else []),
        *_output_args(plan, target),
    ]


def input_args(source: Path, demuxer: str | None, *, start: float | None = None) -> list[str]:
    """`[-ss start] [-f demuxer] -i file:source`: read from `start` (seconds) with the
    demuxer the probe named; `file:` so that no name is taken for a protocol."""
    seek = ["-ss", seconds(start)] if start else []
    return [*seek, *(["-f", demuxer] if demuxer else []), "-i", f"file:{source}"]


def _codec_args(plan: Plan, loudnorm: str | None, *, measuring: bool) -> list[str]:
    if plan.copy:
        return ["-c:a", "copy"]
    filters = ["-af", audio_filters(plan, loudnorm)]
    if measuring:
        return filters
    output = plan.options.output
    return [*filters, *output.encoder_args(plan.options.effective_quality)]


def _output_args(plan: Plan, target: Path | None) -> list[str]:
    if target is None:
        return ["-f", "null", "-"]
    tags = [arg for key, value in plan.metadata for arg in ("-metadata", f"{key}={value}")]
    return [*tags, "-f", plan.options.output.muxer, "-y", str(target)]


def seconds(value: float) -> str:
    """A time as ffmpeg takes it, to the millisecond: 5400.5 → `5400.5`, 21601 → `21601`."""
    return f"{value:.3f}".rstrip("0").rstrip(".")
