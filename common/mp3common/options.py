"""The conversion options: one catalog of what a client may ask for, and their validation.

This module is the single source of the formats and options: the gateway validates an
upload's form fields with `parse_options` (400 naming the option and its allowed values),
`describe()` is `GET /formats` and the OpenAPI document's options, the converter takes its
encoder and muxer arguments from `Format.encoder_args`, and the web page draws its form
from `/formats`. Every option is optional; with none the result is what it always was, an
MP3 at LAME's VBR V2.

Options (form fields beside `file`; an empty field counts as not given):

- `format`: `mp3` (default), `m4a` (AAC in MPEG-4), `opus` (Ogg Opus), `flac`, `wav`;
- `quality`: per format (see `FORMATS`); ignored for the lossless ones, with a note;
- `start`, `end`: trim, in seconds (`90`, `90.5`) or `[hh:]mm:ss[.ms]`;
- `normalize`: the integrated loudness to reach, in LUFS (-70 to -5; EBU R128 two-pass,
  `ebu` = -23), e.g. `-16`;
- `track`: the audio track, by its number among the file's audio tracks counting from 0
  (ffmpeg's `0:a:N`) or by its language code (`eng`, `deu`, as the file names it);
- `channels`: `mono` or `stereo` (default: the source's, more than two mixed to stereo).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class Quality:
    """One choice of quality: its `name` as clients send it and the encoder's arguments."""

    name: str
    description: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Format:
    """An output format: its encoder, muxer, file name extension and media type."""

    name: str
    label: str
    extension: str
    mime_type: str
    #: ffmpeg's encoder (`-c:a`) and muxer (`-f`).
    encoder: str
    muxer: str
    #: Source codecs (ffmpeg's names) whose stream goes into this format as it is.
    copy_codecs: frozenset[str]
    lossless: bool
    qualities: tuple[Quality, ...] = ()
    default_quality: str | None = None
    #: Encoder arguments beside the quality's (e.g. WAV's sample format).
    extra_args: tuple[str, ...] = ()

    def quality(self, name: str | None) -> Quality | None:
        """The quality named `name` (any case), the default for None; None if lossless."""
        wanted = (name or self.default_quality or "").lower()
        return next((q for q in self.qualities if q.name.lower() == wanted), None)

    def encoder_args(self, quality: str | None) -> list[str]:
        """`-c:a <encoder> <quality args>`, for a quality `parse_options` accepted."""
        chosen = self.quality(quality)
        return ["-c:a", self.encoder, *(chosen.args if chosen else ()), *self.extra_args]

    @property
    def short_label(self) -> str:
        """The label without its parenthesis (`AAC`, `FLAC`), for a sentence or a subject."""
        return self.label.split(" (")[0]

    def output_name(self, stem: str) -> str:
        return f"{stem}.{self.extension}"


def _bitrates(*rates: int, note: str = "") -> tuple[Quality, ...]:
    return tuple(Quality(f"{rate}k", f"{rate} kb/s{note}", ("-b:a", f"{rate}k")) for rate in rates)


_LAME_VBR = {0: 245, 1: 225, 2: 190, 3: 175, 4: 165, 5: 130, 6: 115, 7: 100, 8: 85, 9: 65}

FORMATS: dict[str, Format] = {
    fmt.name: fmt
    for fmt in (
        Format(
            "mp3",
            "MP3",
            "mp3",
            "audio/mpeg",
            encoder="libmp3lame",
            muxer="mp3",
            copy_codecs=frozenset({"mp3"}),
            lossless=False,
            qualities=(
                *(
                    Quality(f"V{level}", f"VBR, about {rate} kb/s", ("-q:a", str(level)))
                    for level, rate in _LAME_VBR.items()
                ),
                *_bitrates(128, 192, 256, 320, note=" constant"),
            ),
            default_quality="V2",
        ),
        Format(
            "m4a",
            "AAC (M4A)",
            "m4a",
            "audio/mp4",
            encoder="aac",
            muxer="ipod",
            copy_codecs=frozenset({"aac"}),
            lossless=False,
            qualities=_bitrates(96, 128, 192, 256, 320),
            default_quality="192k",
            extra_args=("-movflags", "+faststart"),
        ),
        Format(
            "opus",
            "Opus",
            "opus",
            "audio/ogg",
            encoder="libopus",
            muxer="opus",
            copy_codecs=frozenset({"opus"}),
            lossless=False,
            qualities=_bitrates(64, 96, 128, 160, 192, 256, note=" VBR"),
            default_quality="128k",
        ),
        Format(
            "flac",
            "FLAC (lossless)",
            "flac",
            "audio/flac",
            encoder="flac",
            muxer="flac",
            copy_codecs=frozenset({"flac"}),
            lossless=True,
        ),
        Format(
            "wav",
            "WAV (lossless, uncompressed)",
            "wav",
            "audio/wav",
            encoder="pcm_s16le",
            muxer="wav",
            copy_codecs=frozenset({"pcm_s16le"}),
            lossless=True,
        ),
    )
}
DEFAULT_FORMAT = "mp3"
CHANNELS = ("mono", "stereo")
#: loudnorm's range for the integrated loudness target, in LUFS.
LOUDNESS_RANGE = (-70.0, -5.0)
#: Names for common loudness targets (EBU R128 broadcast).
LOUDNESS_NAMES = {"ebu": -23.0, "ebu-r128": -23.0, "r128": -23.0}
#: The largest trim time taken, in seconds (a week: no media is longer).
MAX_TIME_SECONDS = 7 * 24 * 3600.0
MAX_TRACK = 63
OPTION_NAMES = ("format", "quality", "start", "end", "normalize", "track", "channels")


class InvalidOption(ValueError):
    """An option the catalog does not allow; `option` names it, `allowed` says what would do."""

    def __init__(self, option: str, message: str, allowed: Any = None) -> None:
        super().__init__(message)
        self.option = option
        self.message = message
        self.allowed = allowed


class ConversionOptions(BaseModel):
    """The options of one job, validated and normalised (JSON-ready with `model_dump`).

    `quality` is the format's canonical name (`V2`, `192k`), None for lossless formats;
    `start`, `end` in seconds; `normalize` in LUFS; `track` an int (0-based among the
    audio tracks) or a lower-case language code.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: str = DEFAULT_FORMAT
    quality: str | None = None
    start: float | None = None
    end: float | None = None
    normalize: float | None = None
    track: int | str | None = None
    channels: Literal["mono", "stereo"] | None = None
    #: Whether the client chose the quality (a chosen one is honoured, so never copied).
    quality_chosen: bool = False

    @property
    def output(self) -> Format:
        return FORMATS[self.format]

    @property
    def effective_quality(self) -> str | None:
        return self.quality or self.output.default_quality

    @property
    def trimmed(self) -> bool:
        return self.start is not None or self.end is not None

    def span(self, duration: float | None) -> float | None:
        """How many seconds of media `duration` seconds long are converted: from `start`
        to `end` or the media's end; None when neither the length nor an end is known."""
        stops = [moment for moment in (self.end, duration) if moment is not None]
        return max(min(stops) - (self.start or 0.0), 0.0) if stops else None

    def decodes(self) -> bool:
        """Whether an option asks for the audio to be decoded and encoded again (a copy of
        the stream cannot honour it): a loudness target, a channel layout, a chosen quality,
        a trim (a copied stream cut keeps the source's length in its header: FLAC's
        STREAMINFO, MP4's movie header; and it cuts at a packet, not at the sample)."""
        return (
            self.normalize is not None
            or self.channels is not None
            or self.quality_chosen
            or self.trimmed
        )

    def copies(self, codec: str | None) -> bool:
        """Whether a source audio stream of `codec` goes into the output as it is: it is
        already the format's codec and no option needs decoding (see `decodes`)."""
        return bool(codec) and codec in self.output.copy_codecs and not self.decodes()

    def summary(self, *, copied: bool = False) -> str:
        """The options in words, e.g. `Opus 96k, 0:10-1:00, normalized to -16 LUFS`.

        `copied`: the output is the source's stream as it was, so its quality is the
        source's, not the format's default: `MP3 (copied without re-encoding), 0:10-end`.
        """
        parts = [self.output.short_label]
        if copied:
            parts[0] += " (copied without re-encoding)"
        elif self.effective_quality and not self.output.lossless:
            parts[0] += f" {self.effective_quality}"
        if self.trimmed:
            parts.append(f"{clock(self.start or 0)}-{clock(self.end) if self.end else 'end'}")
        if self.normalize is not None:
            parts.append(f"normalized to {self.normalize:g} LUFS")
        if self.track is not None:
            parts.append(f"audio track {self.track}")
        if self.channels:
            parts.append(self.channels)
        return ", ".join(parts)

    def public(self) -> dict[str, Any]:
        """What a client sees: every option with its value (defaults filled in)."""
        return {
            "format": self.format,
            "quality": self.effective_quality,
            "start": self.start,
            "end": self.end,
            "normalize": self.normalize,
            "track": self.track,
            "channels": self.channels,
        }


DEFAULT_OPTIONS = ConversionOptions()


def clock(seconds: float) -> str:
    """90.5 → `1:30.5`, 3600 → `1:00:00`; to the millisecond (59.9999 → `1:00`)."""
    whole, millis = divmod(round(seconds * 1000), 1000)
    fraction = f".{millis:03d}".rstrip("0").rstrip(".")
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return text + fraction


# ASCII digits only: `\d` and str.isdigit() also take other scripts' digits and `²`,
# which int() refuses with a ValueError.
_TIME = re.compile(r"^(?:(?:(\d+):)?(\d{1,2}):)?(\d+(?:\.\d+)?)$", re.ASCII)
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_LUFS = re.compile(r"^(-?\d+(?:\.\d+)?)\s*(?:lufs)?$", re.ASCII)
_TRACK = re.compile(r"^\d{1,3}$", re.ASCII)


def parse_time(option: str, text: str) -> float:
    """`90`, `90.5`, `1:30`, `01:02:03.250` → seconds; InvalidOption if not a time."""
    match = _TIME.match(text.strip())
    if match is None:
        raise InvalidOption(
            option,
            f"{option} must be seconds (90, 90.5) or [hh:]mm:ss[.ms] (1:30, 01:02:03.250), "
            f"not {text!r}.",
            "seconds or [hh:]mm:ss[.ms]",
        )
    hours, minutes, seconds = match.groups()
    if (hours is not None or minutes is not None) and float(seconds) >= 60:
        raise InvalidOption(option, f"{option}: seconds must be below 60 in {text!r}.")
    if hours is not None and int(minutes) >= 60:
        raise InvalidOption(option, f"{option}: minutes must be below 60 in {text!r}.")
    # float, not int: int() refuses more than 4300 digits; float makes them inf (refused).
    value = float(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)
    if not math.isfinite(value) or value > MAX_TIME_SECONDS:
        raise InvalidOption(option, f"{option} is past any media's end: {text!r}.")
    return round(value, 3)


def parse_options(fields: Mapping[str, str]) -> tuple[ConversionOptions, list[str]]:
    """The options in an upload's form `fields` (name → text), and the notes to tell the
    client (an option that was ignored, and why).

    Raises InvalidOption for an unknown field or a value the catalog does not allow.
    """
    given = {name: value.strip() for name, value in fields.items() if value.strip()}
    for name in given:
        if name not in OPTION_NAMES:
            raise InvalidOption(
                name,
                f"{name!r} is not an option; the options are {', '.join(OPTION_NAMES)} "
                "(see GET /formats).",
                list(OPTION_NAMES),
            )
    notes: list[str] = []
    name = given.get("format", DEFAULT_FORMAT).lower().lstrip(".")
    output = FORMATS.get(name)
    if output is None:
        raise InvalidOption(
            "format",
            f"format must be one of {', '.join(FORMATS)}, not {given['format']!r}.",
            list(FORMATS),
        )
    quality = None
    if "quality" in given:
        if output.lossless:
            notes.append(f"quality is ignored for {output.name}, a lossless format")
        else:
            chosen = output.quality(given["quality"])
            if chosen is None:
                allowed = [q.name for q in output.qualities]
                raise InvalidOption(
                    "quality",
                    f"quality for {output.name} must be one of {', '.join(allowed)}, "
                    f"not {given['quality']!r}.",
                    allowed,
                )
            quality = chosen.name
    start = parse_time("start", given["start"]) if "start" in given else None
    end = parse_time("end", given["end"]) if "end" in given else None
    if end is not None and end <= (start or 0):
        raise InvalidOption(
            "end", f"end ({given['end']}) must be after start ({given.get('start', '0')})."
        )
    if start == 0:
        start = None
    normalize = _loudness(given["normalize"]) if "normalize" in given else None
    track = _track(given["track"]) if "track" in given else None
    channels = given.get("channels", "").lower() or None
    if channels is not None and channels not in CHANNELS:
        raise InvalidOption(
            "channels",
            f"channels must be mono or stereo, not {given['channels']!r}.",
            list(CHANNELS),
        )
    options = ConversionOptions(
        format=output.name,
        quality=quality,
        start=start,
        end=end,
        normalize=normalize,
        track=track,
        channels=channels,
        quality_chosen=quality is not None,
    )
    return options, notes


def _loudness(text: str) -> float:
    low, high = LOUDNESS_RANGE
    lowered = text.lower()
    if lowered in LOUDNESS_NAMES:
        return LOUDNESS_NAMES[lowered]
    match = _LUFS.match(lowered)
    value = float(match.group(1)) if match else None
    if value is None or not low <= value <= high:
        raise InvalidOption(
            "normalize",
            f"normalize must be a loudness target in LUFS from {low:g} to {high:g} "
            f"(e.g. -16, or ebu for -23), not {text!r}.",
            {"minimum": low, "maximum": high, "names": list(LOUDNESS_NAMES)},
        )
    return value


def _track(text: str) -> int | str:
    if _TRACK.match(text) and int(text) <= MAX_TRACK:
        return int(text)
    if _LANGUAGE.match(text.lower()):
        return text.lower()
    raise InvalidOption(
        "track",
        f"track must be an audio track's number counting from 0 (0-{MAX_TRACK}) or a "
        f"language code such as eng or deu, not {text!r}.",
        f"0-{MAX_TRACK} or a language code",
    )


def describe() -> dict[str, Any]:
    """GET /formats: every format with its qualities and defaults, and every option."""
    return {
        "default_format": DEFAULT_FORMAT,
        "formats": [
            {
                "name": fmt.name,
                "label": fmt.label,
                "extension": fmt.extension,
                "mime_type": fmt.mime_type,
                "lossless": fmt.lossless,
                "default_quality": fmt.default_quality,
                "qualities": [
                    {"name": q.name, "description": q.description} for q in fmt.qualities
                ],
                "copied_from": sorted(fmt.copy_codecs),
            }
            for fmt in FORMATS.values()
        ],
        "options": {
            "format": {
                "description": "The output format.",
                "values": list(FORMATS),
                "default": DEFAULT_FORMAT,
            },
            "quality": {
                "description": "The format's quality (see each format's qualities); "
                "ignored for lossless formats.",
                "default": "the format's default_quality",
            },
            "start": {
                "description": "Trim: where to start, in seconds or [hh:]mm:ss[.ms].",
                "default": None,
            },
            "end": {
                "description": "Trim: where to end, in seconds or [hh:]mm:ss[.ms]; after start.",
                "default": None,
            },
            "normalize": {
                "description": "Loudness normalisation (EBU R128, two-pass) to this "
                "integrated loudness in LUFS; ebu means -23.",
                "minimum": LOUDNESS_RANGE[0],
                "maximum": LOUDNESS_RANGE[1],
                "names": LOUDNESS_NAMES,
                "default": None,
            },
            "track": {
                "description": "The audio track: its number among the file's audio tracks, "
                "counting from 0, or its language code (eng, deu). Default: the track "
                "marked default, else the first.",
                "default": None,
            },
            "channels": {
                "description": "mono or stereo. Default: the source's (more than two are "
                "mixed to stereo).",
                "values": list(CHANNELS),
                "default": None,
            },
        },
    }
