"""The conversion options' two measured promises (issue 13), printed as tables.

1. Copy instead of re-encode: the converter's own `extract_audio` on a 20 min source whose
   audio already is what was asked for (MP3 → mp3, AAC → m4a, Opus → opus), once as it
   runs by default (the stream copied) and once with a quality chosen (encoded again).
   Target: the copy ≥ 20x faster. Both include the probe and the tags, as a job does.
2. Loudness: sources at very different levels, normalised to three targets (EBU R128
   two-pass), then measured with ffmpeg's `ebur128`. Target: within ±1 LU of the target.

Local files only (no queue, no GridFS): what is measured is ffmpeg's work as the
converter asks for it; the rest of a job is in bench_converter.py.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from mp3common.options import parse_options
from mp3testing.media import ffmpeg, ffmpeg_exe, loudness, make_clip

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "converter"))  # the converter's import root, as in its image

from converter_service.extract_audio import extract_audio  # noqa: E402

FFMPEG = ffmpeg_exe()
MINUTES = 20
RUNS = 3
STEREO = "aevalsrc=0.4*sin(440*2*PI*t)|0.4*sin(554*2*PI*t):sample_rate=48000"
#: (source codec args, suffix, format asked for, the quality that forces encoding)
COPY_CASES = (
    (["-c:a", "libmp3lame", "-b:a", "128k"], "mp3", "mp3", "V2"),
    (["-c:a", "aac", "-b:a", "128k"], "m4a", "m4a", "192k"),
    (["-c:a", "libopus", "-b:a", "96k"], "opus", "opus", "128k"),
)
#: Sources: (name, lavfi audio): a quiet tone, a loud one, and speech-like bursts.
LOUDNESS_SOURCES = (
    ("quiet tone (-40 dBFS)", "sine=frequency=440:sample_rate=48000,volume=-40dB"),
    ("loud tone (-3 dBFS)", "sine=frequency=440:sample_rate=48000,volume=-3dB"),
    (
        "bursts and pauses",
        "aevalsrc=0.5*sin(300*2*PI*t)*gt(sin(2*PI*t*0.7)\\,0):sample_rate=44100",
    ),
    ("pink noise (-20 dBFS)", "anoisesrc=color=pink:sample_rate=44100:amplitude=0.1"),
)
TARGETS = (-23.0, -16.0, -14.0)


def timed(source: Path, target: Path, **fields: str) -> tuple[float, bool]:
    """Seconds `extract_audio` took with these options, and whether it copied."""
    options, _ = parse_options(fields)
    started = time.perf_counter()
    audio = extract_audio(source, target, ffmpeg=FFMPEG, options=options)
    return time.perf_counter() - started, audio.copied


def copy_rows(scratch: Path) -> list[tuple[str, str, str, str]]:
    rows = []
    for codec_args, suffix, wanted, quality in COPY_CASES:
        source = scratch / f"source.{suffix}"
        make_clip(source, MINUTES * 60, video=False, tone=STEREO, args=codec_args)
        output = scratch / f"out.{wanted}"
        copy, encode = [], []
        for _ in range(RUNS):  # interleaved: a busy moment hits both alike
            seconds, copied = timed(source, output, format=wanted)
            assert copied, f"{suffix} → {wanted} was not copied"
            copy.append(seconds)
            seconds, copied = timed(source, output, format=wanted, quality=quality)
            assert not copied
            encode.append(seconds)
        copy_s, encode_s = statistics.median(copy), statistics.median(encode)
        ratio = encode_s / copy_s
        rows.append(
            (
                f"{suffix} → {wanted}, {MINUTES} min",
                f"{copy_s:.2f} s",
                f"{encode_s:.2f} s ({quality})",
                f"{ratio:.0f}x  {_mark(ratio >= 20, '≥ 20x')}",
            )
        )
    return rows


def loudness_rows(scratch: Path) -> list[tuple[str, str, str, str]]:
    rows = []
    for index, (name, lavfi) in enumerate(LOUDNESS_SOURCES):
        source = scratch / f"level{index}.wav"
        ffmpeg("-f", "lavfi", "-i", lavfi, "-t", "60", str(source))
        before = loudness(source)
        for target in TARGETS:
            output = scratch / f"norm{index}.opus"
            timed(source, output, format="opus", normalize=f"{target:g}")
            after = loudness(output)
            error = after - target
            rows.append(
                (
                    f"{name}, {before:.1f} LUFS",
                    f"{target:g} LUFS",
                    f"{after:.1f} LUFS",
                    f"{error:+.2f} LU  {_mark(abs(error) <= 1.0, '±1 LU')}",
                )
            )
    return rows


def _mark(ok: bool, target: str) -> str:
    return f"{target} {'met' if ok else 'MISSED'}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        sys.stdout.write("  ".join(cells).rstrip() + "\n")
    sys.stdout.write("\n")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-options-") as folder:
        scratch = Path(folder)
        _table(
            ("copy instead of re-encode, median of 3", "copied", "encoded", "speed-up"),
            copy_rows(scratch),
        )
        _table(
            ("loudness normalisation (60 s, to Opus)", "target", "measured", "error"),
            loudness_rows(scratch),
        )


if __name__ == "__main__":
    main()
