"""Every conversion option on real ffmpeg-made media, read back as a player would (mutagen)."""

import media
import mutagen
import pytest
from mutagen.flac import FLAC
from mutagen.mp3 import MP3, BitrateMode
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.wave import WAVE

from converter_service.extract_audio import extract_audio
from converter_service.failures import UnusableMedia
from mp3common.options import FORMATS, parse_options
from mp3testing.media import ffmpeg as encode
from mp3testing.media import loudness

KINDS = {"mp3": MP3, "m4a": MP4, "opus": OggOpus, "flac": FLAC, "wav": WAVE}
QUALITIES = [
    (fmt.name, name)
    for fmt in FORMATS.values()
    for name in [quality.name for quality in fmt.qualities] or [None]
]


def _convert(source, tmp_path, **fields):
    options, _ = parse_options({name: str(value) for name, value in fields.items()})
    target = tmp_path / options.output.output_name("out")
    return extract_audio(source, target, ffmpeg=media.FFMPEG, options=options), target


@pytest.mark.parametrize(("fmt", "quality"), QUALITIES, ids=[f"{f}-{q}" for f, q in QUALITIES])
def test_each_format_and_quality(fmt, quality, media_dir, tmp_path):
    """Six seconds of pink noise (AAC): bitrates near what each quality names."""
    fields = {"format": fmt, **({"quality": quality} if quality else {})}
    audio, target = _convert(media.noise(media_dir, 0), tmp_path, **fields)
    info = mutagen.File(target).info
    assert isinstance(mutagen.File(target), KINDS[fmt])
    assert abs(info.length - 6.0) <= 0.1 and audio.duration_seconds == round(info.length, 3)
    assert audio.size == target.stat().st_size and not audio.copied
    assert audio.sample_rate == (48000 if fmt == "opus" else 44100)
    if quality and quality.endswith("k"):
        assert 0.7 <= info.bitrate / (int(quality[:-1]) * 1000) <= 1.1, info.bitrate
    if fmt == "mp3" and quality.startswith("V"):
        assert info.bitrate_mode == BitrateMode.VBR
    if fmt == "wav":
        assert info.bitrate == 44100 * 2 * 16  # 16-bit stereo PCM


def test_lame_vbr_levels_go_down_in_size_from_v0_to_v9(media_dir, tmp_path):
    sizes = [
        _convert(media.noise(media_dir, 0), tmp_path, quality=f"V{level}")[0].size
        for level in (0, 2, 5, 9)
    ]
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("fmt", ["mp3", "m4a", "opus", "flac", "wav"])
def test_trim_gives_the_length_between_start_and_end(fmt, media_dir, tmp_path):
    source = media.make(media.SAMPLES["webm vp8+vorbis"], media_dir)  # 3 s
    audio, target = _convert(source, tmp_path, format=fmt, start="0.5", end="2")
    assert abs(mutagen.File(target).info.length - 1.5) <= 0.06, audio


@pytest.mark.parametrize(
    ("sample", "fmt"), [("avi mpeg4+mp3", "mp3"), ("mp4 h264+aac", "m4a"), (None, "flac")]
)
def test_a_trim_is_encoded_so_that_the_header_says_the_trimmed_length(
    sample, fmt, media_dir, tmp_path
):
    """Copied and cut, FLAC's STREAMINFO and MP4's movie header kept the source's length:
    players showed 3 s for 1.5 s of sound."""
    if sample:
        source = media.make(media.SAMPLES[sample], media_dir)
    else:
        source = media_dir / "tone.flac"
        encode("-f", "lavfi", "-i", "sine=frequency=440:duration=3", str(source))
    audio, target = _convert(source, tmp_path, format=fmt, start="1", end="2.5")
    assert not audio.copied
    assert abs(mutagen.File(target).info.length - 1.5) <= 0.06
    assert abs(audio.duration_seconds - 1.5) <= 0.06


def test_a_copy_shorter_than_the_file_is_encoded_on_the_files_timeline(media_dir, tmp_path):
    """AAC that starts 3 s into a 6 s MP4: copied, it was 3 s with a false 'cut off'."""
    source = media_dir / "late.mp4"
    encode(
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=6",
        "-itsoffset", "3", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
        "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "aac", str(source),
    )  # fmt: skip
    audio, target = _convert(source, tmp_path, format="m4a")
    assert not audio.copied and audio.warning is None
    assert abs(mutagen.File(target).info.length - 6.0) <= 0.1


def test_a_start_past_the_end_is_refused(media_dir, tmp_path):
    source = media.make(media.SAMPLES["mp4 h264+aac"], media_dir)
    with pytest.raises(UnusableMedia) as refused:
        _convert(source, tmp_path, start="5")
    assert refused.value.reason == (
        "the trim starts at 0:05, past the end of the audio; the file is 0:03 long"
    )


@pytest.mark.parametrize("volume_db", [-35, 12], ids=["quiet", "loud"])
@pytest.mark.parametrize(("fmt", "target_lufs"), [("mp3", -16), ("opus", -23)])
def test_normalize_reaches_the_target_within_one_lu(
    volume_db, fmt, target_lufs, media_dir, tmp_path
):
    source = media.noise(media_dir, volume_db)
    before = loudness(source)
    audio, target = _convert(source, tmp_path, format=fmt, normalize=target_lufs)
    assert abs(before - target_lufs) > 5  # far off to begin with: -56 or -9 LUFS
    assert abs(loudness(target) - target_lufs) <= 1.0
    assert audio.sample_rate == (48000 if fmt == "opus" else 44100)  # not loudnorm's 192 kHz
    assert abs(audio.duration_seconds - 6.0) <= 0.1 and audio.warning is None


def test_normalize_and_mono_measure_what_is_written(media_dir, tmp_path):
    """The mix to mono comes before loudnorm: a stereo source mixed after it would land
    about 3 LU under the target."""
    audio, target = _convert(media.noise(media_dir, 0), tmp_path, normalize=-16, channels="mono")
    assert MP3(target).info.channels == 1
    assert abs(loudness(target) + 16) <= 1.0


def test_silence_is_left_as_it_is_with_a_warning(media_dir, tmp_path):
    audio, _ = _convert(media.silent_opus(media_dir, 5), tmp_path, normalize=-16)
    assert audio.warning == "the audio is silent, so its loudness was left as it is"


def test_a_sound_too_short_to_measure_is_not_called_silent(media_dir, tmp_path):
    """EBU R128 measures over 0.4 s blocks: 0.3 s of a loud tone has no loudness."""
    source = media_dir / "blip.mp3"
    encode("-f", "lavfi", "-i", "sine=frequency=440:duration=0.3", str(source))
    audio, _ = _convert(source, tmp_path, normalize=-16)
    assert audio.warning.startswith("the audio is shorter than 0.4 s")


@pytest.mark.parametrize(
    ("track", "language", "channels"),
    [(None, "eng", 1), ("0", "eng", 1), ("1", "deu", 2), ("deu", "deu", 2), ("eng", "eng", 1)],
)
def test_the_track_by_number_or_language(track, language, channels, media_dir, tmp_path):
    fields = {"track": track} if track else {}
    audio, target = _convert(media.two_languages(media_dir), tmp_path, **fields)
    assert audio.track.language == language
    assert MP3(target).info.channels == channels  # English is mono, German stereo


def test_a_language_the_file_does_not_have_names_those_it_has(media_dir, tmp_path):
    with pytest.raises(UnusableMedia) as refused:
        _convert(media.two_languages(media_dir), tmp_path, track="fra")
    assert refused.value.reason == (
        "the file has no audio track 'fra'; it has 0 (eng, aac), 1 (deu, aac)"
    )


@pytest.mark.parametrize(
    ("sample", "fields", "channels"),
    [
        ("mkv vp9+opus stereo", {"channels": "mono"}, 1),
        ("mp4 h264+aac", {"channels": "stereo"}, 2),
        ("5.1 surround aac", {"format": "m4a"}, 2),  # more than two: stereo, not copied
        ("5.1 surround aac", {"format": "flac", "channels": "mono"}, 1),
    ],
)
def test_channels(sample, fields, channels, media_dir, tmp_path):
    audio, target = _convert(media.make(media.SAMPLES[sample], media_dir), tmp_path, **fields)
    assert mutagen.File(target).info.channels == channels and not audio.copied


@pytest.mark.parametrize(
    ("sample", "fmt"),
    [("avi mpeg4+mp3", "mp3"), ("mp4 h264+aac", "m4a"), ("mkv vp9+opus stereo", "opus")],
)
def test_audio_that_already_is_the_format_is_copied_frame_for_frame(
    sample, fmt, media_dir, tmp_path
):
    source = media.make(media.SAMPLES[sample], media_dir)
    audio, target = _convert(source, tmp_path, format=fmt)
    assert audio.copied
    assert media.audio_packets_md5(target) == media.audio_packets_md5(source)
    (tmp_path / "again").mkdir()
    reencoded, _ = _convert(source, tmp_path / "again", format=fmt, quality="128k")
    assert not reencoded.copied  # a chosen quality is honoured: encoded anew
