"""Files in every format the converter's ffmpeg writes with sound, and variants real devices make.

`every_audio_format()` asks the ffmpeg imageio-ffmpeg brings (the converter's) for its
muxers; `write_in_format()` makes a short file in one of them, trying the muxer's own
audio codec first and then the codecs the format is known to take; `read_back()` says
whether that ffmpeg reads the file again from its bytes alone (no name to go by, as the
converter stores it). A format that passes both is one the service must convert.

The hand-made variants rewrite ffmpeg's output the way phones and recorders write it
(see each function).
"""

from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

from mp3testing.media import ffmpeg, ffmpeg_exe

FFMPEG = ffmpeg_exe()
SECONDS = 2.0

#: Muxers that write no file of their own (hashes, network protocols, segmenters,
#: playlists, devices) or no sound (images, video-only elementary streams, subtitles).
NOT_A_SOUND_FILE = frozenset(
    """
    chromaprint crc framecrc framehash framemd5 hash md5 streamhash uncodedframecrc null
    fifo tee segment stream_segment,ssegment webm_chunk webm_dash_manifest dash hls hds
    smoothstreaming rtp rtp_mpegts rtsp sap whip mkvtimestamp_v2 ffmetadata
    apng avif gif ico image2 image2pipe webp fits mjpeg mpjpeg smjpeg rawvideo
    yuv4mpegpipe a64 h261 h263 h264 hevc m4v mpeg1video mpeg2video cavsvideo dirac dnxhd
    vc1 vc1test evc vvc obu ivf apv avs2 avs3 roq
    ass jacosub lrc mcc microdvd rcwt scc srt sup ttml webvtt data
    """.split()
)

#: Codecs to try, in order, when the muxer's default audio codec does not work, with the
#: sample rates that often matter (telephony codecs want 8 kHz).
FALLBACK_CODECS = (
    ("pcm_s16le", 44100),
    ("aac", 44100),
    ("libmp3lame", 44100),
    ("mp2", 44100),
    ("ac3", 48000),
    ("libopus", 48000),
    ("libvorbis", 44100),
    ("flac", 44100),
    ("pcm_s16be", 44100),
    ("pcm_mulaw", 8000),
    ("pcm_alaw", 8000),
    ("adpcm_ima_wav", 22050),
    ("adpcm_ms", 22050),
    ("adpcm_yamaha", 8000),
    ("adpcm_g722", 16000),
    ("g723_1", 8000),
    ("libgsm", 8000),
    ("gsm", 8000),
    ("ilbc", 8000),
    ("wmav2", 44100),
    ("nellymoser", 22050),
    ("adpcm_swf", 22050),
    ("pcm_u8", 8000),
    ("adpcm_adx", 44100),
    ("roq_dpcm", 22050),
    ("truehd", 48000),
    ("mlp", 48000),
    ("dfpwm", 48000),
    ("sbc", 44100),
    ("codec2", 8000),
    ("lc3", 48000),
    ("ac4", 48000),
)


def every_muxer() -> list[str]:
    """The muxers of the converter's ffmpeg, devices left out."""
    listing = subprocess.run(
        [FFMPEG, "-hide_banner", "-muxers"], capture_output=True, text=True, check=True
    ).stdout
    names = []
    for line in listing.split("---", 1)[1].splitlines():
        fields = line.split()
        if len(fields) >= 2 and "E" in fields[0] and "d" not in fields[0]:
            names.append(fields[1])
    return names


def every_audio_format() -> list[str]:
    return [name for name in every_muxer() if name not in NOT_A_SOUND_FILE]


#: Formats whose muxer wants more than a codec: broadcast and camcorder video with PCM,
#: and encoders ffmpeg marks experimental.
RECIPES = {
    "dv": ["-target", "pal-dv"],
    "mxf": ["-c:v", "mpeg2video", "-c:a", "pcm_s16le", "-ar", "48000"],
    "gxf": ["-c:v", "mpeg2video", "-c:a", "pcm_s16le", "-ar", "48000"],
    "mxf_opatom": ["-c:a", "pcm_s16le", "-ar", "48000"],
    "dts": ["-c:a", "dca", "-strict", "-2", "-ar", "48000", "-ac", "2"],
    "truehd": ["-c:a", "truehd", "-strict", "-2", "-ar", "48000"],
    "mlp": ["-c:a", "mlp", "-strict", "-2", "-ar", "48000"],
}
#: Those of RECIPES that carry a picture.
WITH_PICTURE = {"dv", "mxf", "gxf"}


def write_in_format(muxer: str, folder: Path) -> Path | None:
    """A SECONDS-long tone in `muxer`'s format (with a test picture when the format needs
    one); None when this ffmpeg cannot write sound in it."""
    path = folder / f"{muxer.split(',')[0]}.bin"
    tone = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}"]
    size = "720x576" if muxer in WITH_PICTURE else "176x144"
    picture = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={SECONDS}"]
    attempts: list[list[str]] = [tone, [*picture, *tone]]
    if muxer in RECIPES:
        attempts.insert(0, [*(picture if muxer in WITH_PICTURE else []), *tone, *RECIPES[muxer]])
    for codec, rate in FALLBACK_CODECS:
        options = ["-c:a", codec, "-ar", str(rate), "-ac", "1"]
        attempts += [[*tone, *options], [*picture, *tone, *options]]
    for inputs in attempts:
        try:
            ffmpeg(*inputs, "-f", muxer, str(path), timeout=60)
        except subprocess.CalledProcessError:
            continue
        if path.stat().st_size > 0:
            return path
    return None


def read_back(path: Path) -> bool:
    """Whether ffmpeg decodes an audio track of `path` from its content alone."""
    done = subprocess.run(
        [
            FFMPEG,
            "-nostdin",
            "-v",
            "error",
            "-i",
            f"file:{path}",
            "-map",
            "0:a:0",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        timeout=60,
    )
    return done.returncode == 0


# --- what devices write --------------------------------------------------------------------


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """(type, offset, size) of the ISO-BMFF boxes in data[start:end]."""
    end = len(data) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = end - offset
        yield kind.decode("latin-1"), offset, size
        offset += size


def _shift_chunk_offsets(data: bytearray, start: int, end: int, delta: int) -> int:
    """Add `delta` to every stco/co64 entry under data[start:end]; how many tables."""
    tables = 0
    for kind, offset, size in list(_boxes(bytes(data), start, end)):
        if kind in ("moov", "trak", "mdia", "minf", "stbl"):
            tables += _shift_chunk_offsets(data, offset + 8, offset + size, delta)
        elif kind in ("stco", "co64"):
            width = 4 if kind == "stco" else 8
            code = ">I" if kind == "stco" else ">Q"
            count = struct.unpack(">I", data[offset + 12 : offset + 16])[0]
            for i in range(count):
                at = offset + 16 + i * width
                (value,) = struct.unpack(code, data[at : at + width])
                data[at : at + width] = struct.pack(code, value + delta)
            tables += 1
    return tables


def mdat_first_mov(path: Path) -> Path:
    """A QuickTime movie that starts with its `mdat` box and has no `ftyp`, as an iPhone's
    Live Photo movie does: ffmpeg's MOV with ftyp (and wide/free) dropped, offsets fixed."""
    source = path.with_suffix(".made.mov")
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=30:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={SECONDS}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-f", "mov", str(source),
    )  # fmt: skip
    data = source.read_bytes()
    boxes = {kind: (offset, size) for kind, offset, size in _boxes(data)}
    mdat_at, mdat_size = boxes["mdat"]
    moov_at, moov_size = boxes["moov"]
    assert mdat_at < moov_at, "ffmpeg wrote moov first"
    moov = bytearray(data[moov_at : moov_at + moov_size])
    assert _shift_chunk_offsets(moov, 0, len(moov), -mdat_at) >= 2  # video and audio
    path.write_bytes(data[mdat_at : mdat_at + mdat_size] + bytes(moov))
    assert path.read_bytes()[4:8] == b"mdat"
    return path


def phone_3gp(path: Path) -> Path:
    """A 3GP whose `ftyp` names only 3GP brands (major and compatible `3gp4`), as phones
    write it; the box keeps its size, so nothing else moves."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=176x144:rate=15:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=8000:duration={SECONDS}",
        "-c:v", "mpeg4", "-c:a", "aac", "-ac", "1", "-f", "3gp", str(path),
    )  # fmt: skip
    data = bytearray(path.read_bytes())
    kind, offset, size = next(_boxes(bytes(data)))
    assert kind == "ftyp"
    data[offset + 8 : offset + 12] = b"3gp4"  # major brand
    for at in range(offset + 16, offset + size, 4):  # every compatible brand
        data[at : at + 4] = b"3gp4"
    path.write_bytes(bytes(data))
    return path


def rf64_wav(path: Path) -> Path:
    """An RF64 WAV, 24-bit 48 kHz, as field recorders and broadcast tools write long takes."""
    ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}",
        "-c:a", "pcm_s24le", "-rf64", "always", "-f", "wav", str(path),
    )  # fmt: skip
    assert path.read_bytes()[:4] == b"RF64"
    return path


def mp3_cut_mid_frame(path: Path, seconds: float = 4.0) -> Path:
    """An MP3 whose first 1,000 bytes are gone, so it starts in the middle of a frame (a
    recording cut from a stream)."""
    whole = path.with_suffix(".whole.mp3")
    ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
        "-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "0", "-write_xing", "0",
        str(whole),
    )  # fmt: skip
    path.write_bytes(whole.read_bytes()[1000:])
    return path


def late_audio(path: Path, *, total: float = 10.0, audio_from: float = 4.0) -> Path:
    """A video whose sound starts `audio_from` seconds in (an edit list in MP4)."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=15:duration={total}",
        "-itsoffset", str(audio_from),
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={total - audio_from}",
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        str(path),
    )  # fmt: skip
    return path


def audio_with_a_gap(path: Path) -> Path:
    """9 s of Matroska whose sound has a hole from 3 s to 6 s (its timestamps jump)."""
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:duration=6,asetpts='if(gte(T,3),PTS+3/TB,PTS)'",
        "-c:a", "libvorbis", "-f", "matroska", str(path),
    )  # fmt: skip
    return path


def two_tracks_second_default(path: Path) -> Path:
    """Two audio tracks: the first silent, the second a tone and marked default."""
    ffmpeg(
        "-f", "lavfi", "-i", f"anullsrc=sample_rate=44100:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}",
        "-map", "0:a", "-map", "1:a", "-c:a", "aac",
        "-disposition:a:0", "0", "-disposition:a:1", "default",
        "-f", "matroska", str(path),
    )  # fmt: skip
    return path


def undecodable_first_track(path: Path) -> Path:
    """An MP4 whose first (default) audio track is in a codec ffmpeg has no decoder for,
    beside a usable AAC one, as an iPhone writes spatial audio (APAC) beside AAC: the
    first track's sample entry is renamed to `apac` and its decoder config hidden."""
    ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=220:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}",
        "-map", "0:a", "-map", "1:a", "-c:a", "aac", "-f", "mp4", str(path),
    )  # fmt: skip
    data = path.read_bytes()
    entry = data.index(b"mp4a")
    config = data.index(b"esds", entry)
    data = data[:entry] + b"apac" + data[entry + 4 : config] + b"zzzz" + data[config + 4 :]
    path.write_bytes(data)
    return path


def faststart_mp4_cut(path: Path, *, seconds: float = 10.0, keep: float = 0.4) -> Path:
    """A `seconds`-long MP4 (index first) of which only the first `keep` share arrived."""
    whole = path.with_suffix(".whole.mp4")
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-movflags", "+faststart", str(whole),
    )  # fmt: skip
    data = whole.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def volume(path: Path, *, start: float = 0.0, length: float | None = None) -> float:
    """The loudest sample of `path` between start and start+length, in dBFS (-91 = none)."""
    window = ["-ss", str(start)] + (["-t", str(length)] if length else [])
    done = subprocess.run(
        [
            FFMPEG,
            "-nostdin",
            "-hide_banner",
            *window,
            "-i",
            str(path),
            "-af",
            "volumedetect",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"max_volume: (-?[\d.]+|-inf) dB", done.stderr)
    assert match, done.stderr
    return -91.0 if match.group(1) == "-inf" else float(match.group(1))
