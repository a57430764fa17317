"""What each option does to ffmpeg's arguments (ffmpeg_args): pure logic, no ffmpeg run."""

from pathlib import Path

import pytest

from converter_service.failures import UnusableMedia
from converter_service.ffmpeg_args import audio_filters, ffmpeg_command, plan, seconds
from mp3common.media import Probe, Stream
from mp3common.options import parse_options

VIDEO = Stream(0, "video", "h264", None, default=True, decodable=True)
ENG = Stream(1, "audio", "aac", "eng", True, True, sample_rate=44100, channel_layout="stereo")
DEU = Stream(2, "audio", "aac", "deu", False, True, sample_rate=48000, channel_layout="mono")
APAC = Stream(3, "audio", "none", None, False, False, sample_rate=48000)


def _probe(*streams: Stream, duration: float | None = 600.0, demuxer: str = "mov,mp4") -> Probe:
    return Probe(format=demuxer, score=100, opened=True, duration_seconds=duration, streams=streams)


def _command(fields=None, probe=None, *, target="out", max_seconds=None, loudnorm=None):
    options, _ = parse_options(fields or {})
    chosen = plan(probe or _probe(VIDEO, ENG, DEU), options, max_seconds=max_seconds)
    path = Path(target) if target else None
    return ffmpeg_command("ffmpeg", Path("in"), path, chosen, loudnorm=loudnorm)


def _after(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_the_default_is_todays_mp3_with_progress_and_no_stray_metadata():
    assert _command() == [
        "ffmpeg", "-nostdin", "-hide_banner", "-nostats",
        "-progress", "pipe:1", "-stats_period", "0.5",
        "-f", "mov", "-i", "file:in",
        "-map", "0:1", "-map_metadata", "-1", "-map_chapters", "-1",
        "-vn", "-sn", "-dn",
        "-af", "aresample=async=1:first_pts=0",
        "-c:a", "libmp3lame", "-q:a", "2",
        "-f", "mp3", "-y", "out",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "codec_args", "muxer"),
    [
        ({"quality": "V0"}, ["libmp3lame", "-q:a", "0"], "mp3"),
        ({"quality": "320k"}, ["libmp3lame", "-b:a", "320k"], "mp3"),
        ({"format": "m4a", "quality": "128k"}, ["aac", "-b:a", "128k", "-movflags", "+faststart"],
         "ipod"),
        ({"format": "opus"}, ["libopus", "-b:a", "128k"], "opus"),
        ({"format": "opus", "quality": "64k"}, ["libopus", "-b:a", "64k"], "opus"),
        ({"format": "flac"}, ["flac"], "flac"),
        ({"format": "wav"}, ["pcm_s16le"], "wav"),
    ],
)  # fmt: skip
def test_format_and_quality_come_from_the_catalog(fields, codec_args, muxer):
    command = _command(fields)
    start = command.index("-c:a") + 1
    assert command[start : start + len(codec_args)] == codec_args
    assert command[-4:] == ["-f", muxer, "-y", "out"]


@pytest.mark.parametrize(
    ("track", "stream"),
    [(None, "0:1"), (0, "0:1"), (1, "0:2"), ("deu", "0:2"), ("eng", "0:1")],
)
def test_the_track_by_its_number_among_audio_tracks_or_its_language(track, stream):
    fields = {} if track is None else {"track": str(track)}
    assert _after(_command(fields), "-map") == stream


@pytest.mark.parametrize(
    ("track", "reason"),
    [
        ("fra", "the file has no audio track 'fra'; it has 0 (eng, aac), 1 (deu, aac), 2 (none)"),
        ("3", "the file has no audio track 3; it has 0 (eng, aac), 1 (deu, aac), 2 (none)"),
        ("2", "the audio track is in a format that cannot be decoded"),
    ],
)
def test_a_track_the_file_does_not_have_is_refused_with_the_tracks_it_has(track, reason):
    with pytest.raises(UnusableMedia) as refused:
        _command({"track": track}, _probe(VIDEO, ENG, DEU, APAC))
    assert refused.value.reason == reason
    assert refused.value.kind == ("codec" if track == "2" else "track")


def test_trim_seeks_the_input_and_limits_the_output():
    command = _command({"start": "1:30", "end": "2:00.5"})
    assert command.index("-ss") < command.index("-i")
    assert (_after(command, "-ss"), _after(command, "-t")) == ("90", "30.5")
    assert command.index("-t") > command.index("-i")


@pytest.mark.parametrize(
    ("fields", "span"),
    [
        ({}, 600.0),
        ({"start": "100"}, 500.0),
        ({"end": "100"}, 100.0),
        ({"start": "100", "end": "160"}, 60.0),
        ({"start": "590", "end": "700"}, 10.0),  # an end past the file's: to the end
    ],
)
def test_the_span_converted_is_what_progress_and_the_limit_count(fields, span):
    options, _ = parse_options(fields)
    assert plan(_probe(VIDEO, ENG), options).span == span


def test_a_start_past_the_end_is_refused_with_a_clear_reason():
    options, _ = parse_options({"start": "12"})
    with pytest.raises(UnusableMedia) as refused:
        plan(_probe(ENG, duration=10.0), options)
    assert refused.value.reason == (
        "the trim starts at 0:12, past the end of the audio; the file is 0:10 long"
    )
    assert refused.value.kind == "trim"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "the file is 10 min long; this service converts at most 5 min per file"),
        ({"start": "60"}, "the part of the file to convert is 9 min long; this service "
         "converts at most 5 min per file"),
    ],
)  # fmt: skip
def test_what_is_converted_over_the_limit_is_refused_before_converting(fields, reason):
    options, _ = parse_options(fields)
    with pytest.raises(UnusableMedia) as refused:
        plan(_probe(ENG), options, max_seconds=300)
    assert (refused.value.reason, refused.value.kind) == (reason, "too_long")


@pytest.mark.parametrize(
    ("fields", "duration", "length"),
    [
        ({"start": "60", "end": "300"}, 600.0, "240"),  # a trimmed part within the limit
        ({}, None, "301"),  # a length unknown: stopped a second past the limit
        ({"end": "1000"}, None, "301"),
        ({"end": "100"}, None, "100"),
    ],
)
def test_t_is_the_trim_or_a_second_past_the_limit(fields, duration, length):
    command = _command(fields, _probe(ENG, duration=duration), max_seconds=300)
    assert _after(command, "-t") == length


@pytest.mark.parametrize(
    ("stream", "channels", "layout"),
    [
        (ENG, None, None),  # stereo stays stereo
        (DEU, None, None),  # mono stays mono
        (ENG, "mono", "mono"),
        (DEU, "stereo", "stereo"),
        (Stream(1, "audio", "aac", None, True, True, 48000, "5.1(side)"), None, "stereo"),
    ],
)
def test_channels_mix_in_the_filter_chain_and_more_than_two_become_stereo(stream, channels, layout):
    fields = {"format": "flac", **({"channels": channels} if channels else {})}
    filters = _after(_command(fields, _probe(stream)), "-af")
    expected = "aresample=async=1:first_pts=0"
    assert filters == expected + (f",aformat=channel_layouts={layout}" if layout else "")


@pytest.mark.parametrize(
    ("stream", "fields", "copies"),
    [
        (ENG, {"format": "m4a"}, True),
        (ENG, {"format": "m4a", "start": "10", "end": "20"}, False),  # a cut copy kept its length
        (ENG, {"format": "m4a", "quality": "192k"}, False),  # a chosen quality is honoured
        (ENG, {"format": "m4a", "normalize": "-16"}, False),
        (ENG, {"format": "m4a", "channels": "mono"}, False),
        (ENG, {}, False),  # AAC is not MP3
        (Stream(1, "audio", "mp3", None, True, True, 44100, "stereo"), {}, True),
        (Stream(1, "audio", "opus", None, True, True, 48000, "stereo"), {"format": "opus"}, True),
        (Stream(1, "audio", "flac", None, True, True, 96000, "mono"), {"format": "flac"}, True),
        (Stream(1, "audio", "pcm_s16le", None, True, True, 44100, "stereo"), {"format": "wav"},
         True),
        (Stream(1, "audio", "pcm_s24le", None, True, True, 44100, "stereo"), {"format": "wav"},
         False),
        # A copy cannot mix 5.1 to stereo, as the default asks.
        (Stream(1, "audio", "aac", None, True, True, 48000, "5.1"), {"format": "m4a"}, False),
    ],
)  # fmt: skip
def test_the_stream_is_copied_when_it_already_is_what_was_asked_for(stream, fields, copies):
    command = _command(fields, _probe(VIDEO, stream))
    assert (_after(command, "-c:a") == "copy") is copies
    assert ("-af" not in command) is copies


def test_normalize_measures_then_applies_after_the_channel_mix():
    measuring = _command({"channels": "mono"}, target=None, loudnorm="loudnorm=I=-16")
    assert measuring[-3:] == ["-f", "null", "-"] and "-c:a" not in measuring
    assert _after(measuring, "-af").endswith("aformat=channel_layouts=mono,loudnorm=I=-16")
    options, _ = parse_options({"normalize": "-16"})
    assert plan(_probe(ENG), options).passes == 2
    assert audio_filters(plan(_probe(ENG), options), "x").split(",")[-1] == "x"


def test_wav_gets_its_tags_from_ffmpeg():
    options, _ = parse_options({"format": "wav"})
    chosen = plan(_probe(ENG), options, metadata={"title": "a=b", "artist": "Ann"})
    command = ffmpeg_command("ffmpeg", Path("in"), Path("out.wav"), chosen)
    assert command[-8:] == [
        "-metadata", "title=a=b", "-metadata", "artist=Ann", "-f", "wav", "-y", "out.wav"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "text"), [(5400.5, "5400.5"), (21601.0, "21601"), (0.25, "0.25"), (123456.789,
    "123456.789")]
)  # fmt: skip
def test_times_go_to_ffmpeg_to_the_millisecond(value, text):
    assert seconds(value) == text
