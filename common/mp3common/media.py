"""What a file is, judged by the converter's own ffmpeg (libavformat's format probe).

The gateway asks it about the first bytes of an upload (`PROBE_BYTES`, as much as
libavformat itself looks at to name a format), the converter about the whole file, with
the same binary: so the gateway accepts exactly what the converter can read, and refuses
what libavformat identifies as something else (an image, a subtitle or playlist file) or
cannot identify (text, PDF, archives, executables, random bytes).

ffmpeg reports on stderr; the lines read here have kept their form for many releases:

    [in#0 @ 0x…] Format mov,mp4,m4a,3gp,3g2,mj2 probed with size=2048 and score=100
      Duration: 00:00:10.00, start: 0.000000, bitrate: 102 kb/s
      Stream #0:1[0x2](eng), 1, 1/48000: Audio: aac (LC) (mp4a / 0x…), 48000 Hz, stereo, … (default)
      Stream #0:2[0x0], 1, 1/90000: Video: mjpeg (Baseline), …, 600x600, … (attached pic)

An audio stream's line gives its sample rate (`48000 Hz`) and channel layout (`mono`,
`stereo`, `5.1(side)`, or `6 channels` when it has no name); a video stream marked
`(attached pic)` is a cover picture (an MP3's APIC, an M4A's covr), not moving pictures.
"""

from __future__ import annotations

import functools
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

#: libavformat's PROBE_BUF_MAX: it names a format from at most this much of a file.
PROBE_BYTES = 1 << 20
#: AVPROBE_SCORE_RETRY: at or below it ffmpeg warns "misdetection possible" (a guess on
#: a few bytes, e.g. an MP3 that starts mid-frame): such a guess counts only when ffmpeg
#: then opened the file and found sound it can decode in it.
MIN_SCORE = 25
#: How long one probe may take, in seconds (it takes some 20-50 ms).
PROBE_TIMEOUT_SECONDS = 20.0

#: Demuxers that name something other than sound or moving pictures: still images, text
#: (subtitles, lyrics), and lists that point ffmpeg at other files (concat, playlists),
#: which must never be followed on a server. Image demuxers are also all the `*_pipe` ones.
NOT_MEDIA_FORMATS = frozenset(
    """
    image2 image2pipe gif apng ico alias_pix brender_pix fits webp_anim jpegxl_anim
    srt webvtt ass microdvd subviewer subviewer1 sami realtext jacosub mpl2 mpsub pjs
    vplayer stl scc lrc aqtitle tedcaptions mcc rcwt dvbsub dvbtxt sup vobsub
    concat hls dash webm_dash_manifest imf ffmetadata sdp rtsp rtp avisynth sbg dvdvideo
    data bin tty idf adf xbin
    """.split()
)

_PROBED = re.compile(
    r"Format (\S+) (?:probed with size=\d+ and score=|detected only with low score of )(\d+)"
)
_OPENED = re.compile(r"^Input #0, ", re.M)
_DURATION = re.compile(r"^\s*Duration: (?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|N/A)", re.M)
_SOUND = re.compile(r"\b(\d+) Hz(?:, ([^,\s]+(?: channels)?))?")
_STREAM = re.compile(
    r"^\s*Stream #0:(\d+)(?:\[[^\]]*\])?(?:\(([^)]*)\))?[^:]*: "
    r"(Audio|Video|Subtitle|Data|Attachment): ([^\s,]+)(.*)$",
    re.M,
)


@dataclass(frozen=True)
class Stream:
    """One stream of the file: its index in ffmpeg's numbering (`-map 0:<index>`)."""

    index: int
    kind: str  # "audio", "video", "subtitle", "data", "attachment"
    codec: str  # ffmpeg's codec name; "none" when ffmpeg does not know it
    language: str | None
    default: bool  # marked as the one to play (disposition "default")
    decodable: bool  # this ffmpeg can decode it
    #: Audio: samples a second (Hz) and ffmpeg's name of the channel layout ("stereo",
    #: "5.1(side)", "6 channels"); None when the line does not say.
    sample_rate: int | None = None
    channel_layout: str | None = None
    #: A picture stored beside the sound (disposition "attached pic": a cover).
    attached_pic: bool = False

    @property
    def channels(self) -> int | None:
        """How many channels the layout has (`channel_count`); None when unknown."""
        return channel_count(self.channel_layout)


@dataclass(frozen=True)
class Probe:
    """ffmpeg's verdict on a file (or on its first bytes)."""

    #: The demuxer's name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"; None when none matched.
    format: str | None
    #: How sure libavformat is, 1..100 (100: the file says what it is).
    score: int
    #: The demuxer read the file's header (a guess that failed there is not media).
    opened: bool
    #: The container's length in seconds, when it says (None: unknown or not read yet).
    duration_seconds: float | None
    #: What ffmpeg could list; may be empty for a file's first bytes (headers at the end).
    streams: tuple[Stream, ...]
    #: The signal that ended ffmpeg before it finished (the out-of-memory killer's SIGKILL):
    #: then the verdict is not the file's. None when ffmpeg ended by itself.
    killed_by_signal: int | None = None

    @property
    def demuxer(self) -> str | None:
        """The name to force the same demuxer with (`-f`): the first of its names."""
        return self.format.split(",")[0] if self.format else None

    @property
    def is_media(self) -> bool:
        """Identified, with confidence, as a sound or video format ffmpeg reads."""
        if self.format is None:
            return False
        if self.score <= MIN_SCORE and not (self.opened and self.audio_track()):
            return False
        names = set(self.format.split(","))
        if names & NOT_MEDIA_FORMATS or any(name.endswith("_pipe") for name in names):
            return False
        kinds = {stream.kind for stream in self.streams}
        # Streams listed, but only text or data: a subtitle or data file in a container.
        return not kinds or bool(kinds & {"audio", "video"})

    def audio_track(self) -> Stream | None:
        """The audio stream to convert: the one marked default among those this ffmpeg can
        decode, else the first it can decode; None when there is none."""
        usable = [s for s in self.streams if s.kind == "audio" and s.decodable]
        return next((s for s in usable if s.default), usable[0] if usable else None)


class ProbeStopped(Exception):
    """`should_stop` said so while ffmpeg was still reading; ffmpeg was killed."""


def probe(
    source: bytes | Path,
    *,
    ffmpeg: str,
    timeout: float = PROBE_TIMEOUT_SECONDS,
    should_stop: Callable[[], bool] = lambda: False,
) -> Probe:
    """Ask `ffmpeg` what `source` is: the bytes themselves (at most PROBE_BYTES are
    looked at) or a file, whose name is not used (only its content counts).

    Raises subprocess.TimeoutExpired after `timeout` seconds, ProbeStopped when
    `should_stop()` turns true (polled 4 times a second), OSError if ffmpeg cannot run.
    """
    data = source[:PROBE_BYTES] if isinstance(source, bytes) else None
    target = "pipe:0" if data is not None else f"file:{source}"
    process = subprocess.Popen(
        [ffmpeg, "-hide_banner", "-nostdin", "-v", "debug", "-i", target],
        stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    pending = data
    try:
        while True:
            try:
                _, stderr = process.communicate(pending, timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                pending = None  # communicate() keeps feeding what it was given
                if should_stop():
                    raise ProbeStopped("stopping: the probe was killed") from None
                if time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired(process.args, timeout) from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    found = parse(stderr.decode("utf-8", "replace"), decoders(ffmpeg))
    if process.returncode is not None and process.returncode < 0:  # ours raised above
        return replace(found, killed_by_signal=-process.returncode)
    return found


def parse(stderr: str, known_decoders: frozenset[str]) -> Probe:
    """The Probe in ffmpeg's debug output (see the module docstring)."""
    probed = _PROBED.search(stderr)
    duration = None
    if (match := _DURATION.search(stderr)) and match.group(1) is not None:
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    streams = tuple(
        _stream(index, language, kind, codec, rest, known_decoders)
        for index, language, kind, codec, rest in _STREAM.findall(stderr)
    )
    return Probe(
        format=probed.group(1) if probed else None,
        score=int(probed.group(2)) if probed else 0,
        opened=bool(_OPENED.search(stderr)),
        duration_seconds=duration,
        streams=streams,
    )


def _stream(
    index: str, language: str, kind: str, codec: str, rest: str, known_decoders: frozenset[str]
) -> Stream:
    sound = _SOUND.search(rest) if kind == "Audio" else None
    return Stream(
        index=int(index),
        kind=kind.lower(),
        codec=codec,
        language=language if language and language != "und" else None,
        default="(default)" in rest,
        decodable=codec in known_decoders,
        sample_rate=int(sound.group(1)) if sound else None,
        channel_layout=sound.group(2) if sound else None,
        attached_pic="(attached pic)" in rest,
    )


#: Layouts whose name is not their count: libavutil's named ones (the others are "X.Y"
#: or "X.Y.Z", X + Y + Z channels, or "N channels").
_NAMED_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "downmix": 2,
    "binaural": 2,
    "quad": 4,
    "hexagonal": 6,
    "octagonal": 8,
    "cube": 8,
    "hexadecagonal": 16,
}


def channel_count(layout: str | None) -> int | None:
    """`mono` → 1, `5.1(side)` → 6, `7.1.4` → 12, `6 channels` → 6; None if unknown."""
    if not layout:
        return None
    name = layout.split("(", 1)[0]
    if name in _NAMED_LAYOUTS:
        return _NAMED_LAYOUTS[name]
    if name.endswith(" channels") and name.split()[0].isdigit():
        return int(name.split()[0])
    parts = name.split(".")
    if all(part.isdigit() for part in parts):
        return sum(int(part) for part in parts)
    return None


@functools.cache
def decoders(ffmpeg: str) -> frozenset[str]:
    """The codec names (as streams are listed) that `ffmpeg` can decode, from its
    `-codecs` table (flag D), once per binary. (Decoder names differ: "dts" is decoded
    by "dca", "mp3" by "mp3float".)"""
    listing = subprocess.run(
        [ffmpeg, "-hide_banner", "-codecs"], capture_output=True, check=True, timeout=30
    ).stdout.decode()
    names = set()
    for line in listing.split("-------", 1)[-1].splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].startswith("D"):
            names.add(fields[1])
    return frozenset(names)


#: MIME types for the formats people upload most; any other media is octet-stream.
_MIME_TYPES = {
    "mov": "video/quicktime",
    "matroska": "video/x-matroska",
    "avi": "video/x-msvideo",
    "mpegts": "video/mp2t",
    "mpeg": "video/mpeg",
    "flv": "video/x-flv",
    "asf": "video/x-ms-asf",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "w64": "audio/x-w64",
    "aiff": "audio/aiff",
    "caf": "audio/x-caf",
    "amr": "audio/amr",
    "dv": "video/dv",
    "mxf": "application/mxf",
}


def mime_type(result: Probe, head: bytes = b"") -> str:
    """A MIME type for the probed format; for the one demuxer that reads MOV, MP4 and 3GP,
    the file's own `ftyp` brand (in `head`, its first bytes) tells them apart."""
    if result.demuxer == "mov" and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand.startswith(b"3g2"):
            return "video/3gpp2"
        if brand.startswith(b"3g"):
            return "video/3gpp"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        if brand != b"qt  ":
            return "video/mp4"
    return _MIME_TYPES.get(result.demuxer or "", "application/octet-stream")
