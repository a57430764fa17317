"""Tags and cover art: read from the source, written into the output in its own kind of tag.

The tags are `{"title", "artist", "album", "date", "comment"}` (those the source has; at
most `MAX_TAG_CHARS` characters each), from the container's global metadata as
`ffmpeg -i file -f ffmetadata pipe:1` prints it (keys in any case; the date, else the
date part of `creation_time`). The title is the container's, else the upload's file name
without its extension.

The cover is a JPEG of at most `COVER_PX` pixels on its long side: the container's
attached picture (an MP3's APIC, an M4A's covr, a Matroska cover) when it has one, else
a frame of the video at `COVER_AT` of its length. A source with no picture and no video
(audio only) gets no cover: none is invented.

Written with mutagen once ffmpeg is done (ffmpeg runs with `-map_metadata -1`, so nothing
else of the source's is carried):

- mp3: ID3v2.3, the version every player reads (Windows' too): TIT2, TPE1, TALB, the date
  (TDRC, saved in 2.3 as TYER and TDAT), COMM, and an APIC front cover;
- m4a: MP4 atoms ©nam, ©ART, ©alb, ©day, ©cmt, covr;
- opus, flac: Vorbis comments TITLE, ARTIST, ALBUM, DATE, COMMENT, and a FLAC picture
  block (for Opus, base64 in METADATA_BLOCK_PICTURE);
- wav: RIFF INFO, which ffmpeg writes (`-metadata`, `ffmpeg_metadata`); no cover.

Nothing here fails a job: a tag or cover that cannot be read or written is logged, and the
output goes without it.
"""

from __future__ import annotations

import base64
import logging
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, COMM, ID3, TALB, TDRC, TIT2, TPE1, PictureType
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggopus import OggOpus

from mp3common import media
from mp3common.options import Format

from .ffmpeg_args import input_args

log = logging.getLogger(__name__)

TAG_NAMES = ("title", "artist", "album", "date", "comment")
MAX_TAG_CHARS = 1000
COVER_PX = 600
#: Where in the video its cover frame is taken, as a share of its length.
COVER_AT = 0.1
#: How long reading the tags or making the cover may take, in seconds (tens of ms).
TIMEOUT_SECONDS = 20.0
_SCALE = f"scale=w='min({COVER_PX},iw)':h='min({COVER_PX},ih)':force_original_aspect_ratio=decrease"


# --- reading -------------------------------------------------------------------------------


def read_source_tags(
    ffmpeg: str, source: Path, *, demuxer: str | None, filename: str | None
) -> dict[str, str]:
    """The source's tags (see the module docstring); the title from `filename` when the
    container has none, and that alone when its metadata cannot be read."""
    command = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error"]
    command += [*input_args(source, demuxer), "-f", "ffmetadata", "pipe:1"]
    try:
        result = subprocess.run(command, capture_output=True, timeout=TIMEOUT_SECONDS)
        text = result.stdout.decode("utf-8", "replace") if result.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not read the source's tags: %r", exc)
        text = ""
    return source_tags(parse_ffmetadata(text), filename)


def source_tags(metadata: Mapping[str, str], filename: str | None) -> dict[str, str]:
    """`metadata` (lower-case keys) → the tags to write."""
    found = {name: metadata.get(name, "") for name in TAG_NAMES}
    found["date"] = found["date"] or metadata.get("creation_time", "")[:10]
    if not found["title"].strip() and filename:
        found["title"] = Path(filename).stem
    return {name: value.strip()[:MAX_TAG_CHARS] for name, value in found.items() if value.strip()}


def parse_ffmetadata(text: str) -> dict[str, str]:
    """The global section of an FFMETADATA1 text: {key in lower case: value}, the first of
    each key. `\\` escapes `=`, `;`, `#`, `\\` and a line end (a value over several lines);
    lines starting with `;` or `#` are comments; `[STREAM]`, `[CHAPTER]` sections follow."""
    found: dict[str, str] = {}
    for line in _logical_lines(text):
        if not line or line[0] in ((";", False), ("#", False)):
            continue
        if line[0] == ("[", False):
            break
        split = next((i for i, char in enumerate(line) if char == ("=", False)), None)
        if split is not None:
            key = "".join(char for char, _ in line[:split]).strip().lower()
            found.setdefault(key, "".join(char for char, _ in line[split + 1 :]))
    return found


def _logical_lines(text: str) -> Iterator[list[tuple[str, bool]]]:
    """Each line as (character, escaped) pairs; an escaped line end continues the line."""
    line: list[tuple[str, bool]] = []
    escaped = False
    for char in text:
        if escaped:
            line.append((char, True))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "\n":
            yield line
            line = []
        else:
            line.append((char, False))
    yield line


# --- the cover -----------------------------------------------------------------------------


def cover_source(probe: media.Probe) -> tuple[media.Stream, float | None] | None:
    """The stream the cover comes from and where to take it (seconds; None: the attached
    picture itself), or None for a source with neither picture nor video."""
    video = [s for s in probe.streams if s.kind == "video" and s.decodable]
    picture = next((s for s in video if s.attached_pic), None)
    if picture is not None:
        return picture, None
    moving = next((s for s in video if not s.attached_pic), None)
    if moving is None:
        return None
    return moving, COVER_AT * (probe.duration_seconds or 0.0)


def make_cover(ffmpeg: str, source: Path, probe: media.Probe, target: Path) -> bytes | None:
    """The cover as JPEG bytes (written to `target` on the way), or None when the source
    has none or it cannot be made (logged)."""
    found = cover_source(probe)
    if found is None:
        return None
    stream, at = found
    command = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error"]
    command += [*input_args(source, probe.demuxer, start=at), "-map", f"0:{stream.index}"]
    command += ["-frames:v", "1"]
    command += ["-vf", _SCALE, "-c:v", "mjpeg", "-q:v", "3", "-f", "image2", "-y", str(target)]
    try:
        subprocess.run(command, capture_output=True, check=True, timeout=TIMEOUT_SECONDS)
        return target.read_bytes() or None
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not make a cover from stream %d: %r", stream.index, exc)
        return None


# --- writing -------------------------------------------------------------------------------


def ffmpeg_metadata(output: Format, tags: Mapping[str, str]) -> dict[str, str]:
    """The tags ffmpeg itself writes (`-metadata`): WAV's RIFF INFO, which mutagen cannot."""
    return dict(tags) if output.name == "wav" else {}


def write_tags(path: Path, output: Format, tags: Mapping[str, str], cover: bytes | None) -> bool:
    """Tag the file at `path`; whether it got the cover. Never raises (failures logged)."""
    writer = _WRITERS.get(output.name)
    if writer is None:
        return False
    try:
        writer(path, tags, cover)
    except Exception:  # a tag is decoration: the job is done without it
        log.exception("could not write the tags into the %s output", output.name)
        return False
    return cover is not None


def _id3(path: Path, tags: Mapping[str, str], cover: bytes | None) -> None:
    frames = ID3()  # a new tag replaces ffmpeg's (its encoder name) as it is saved
    for name, frame in (("title", TIT2), ("artist", TPE1), ("album", TALB), ("date", TDRC)):
        if name in tags:
            frames.add(frame(encoding=3, text=tags[name]))
    if "comment" in tags:
        frames.add(COMM(encoding=3, lang="eng", desc="", text=tags["comment"]))
    if cover:
        frames.add(
            APIC(encoding=3, mime="image/jpeg", type=PictureType.COVER_FRONT, desc="", data=cover)
        )
    frames.update_to_v23()  # TDRC → TYER, TDAT: saving as 2.3 does not convert them
    frames.save(path, v2_version=3)


_MP4_ATOMS = {"title": "©nam", "artist": "©ART", "album": "©alb", "date": "©day", "comment": "©cmt"}


def _mp4(path: Path, tags: Mapping[str, str], cover: bytes | None) -> None:
    audio = MP4(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.clear()
    for name, value in tags.items():
        audio.tags[_MP4_ATOMS[name]] = [value]
    if cover:
        audio.tags["covr"] = [MP4Cover(cover, imageformat=MP4Cover.FORMAT_JPEG)]
    audio.save()


def _picture(cover: bytes) -> Picture:
    picture = Picture()
    picture.type = PictureType.COVER_FRONT
    picture.mime = "image/jpeg"
    picture.data = cover
    return picture


def _vorbis_comments(audio: FLAC | OggOpus, tags: Mapping[str, str]) -> None:
    if audio.tags is None:
        audio.add_tags()
    audio.tags.clear()
    for name, value in tags.items():
        audio.tags[name.upper()] = [value]


def _flac(path: Path, tags: Mapping[str, str], cover: bytes | None) -> None:
    audio = FLAC(path)
    _vorbis_comments(audio, tags)
    audio.clear_pictures()
    if cover:
        audio.add_picture(_picture(cover))
    audio.save()


def _opus(path: Path, tags: Mapping[str, str], cover: bytes | None) -> None:
    audio = OggOpus(path)
    _vorbis_comments(audio, tags)
    if cover:
        block = base64.b64encode(_picture(cover).write()).decode("ascii")
        audio.tags["METADATA_BLOCK_PICTURE"] = [block]
    audio.save()


_WRITERS = {"mp3": _id3, "m4a": _mp4, "flac": _flac, "opus": _opus}
