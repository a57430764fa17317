"""Reading ffmpeg's verdict on a file (mp3common.media): its words, without running it."""

import pytest

from mp3common.media import Probe, Stream, channel_count, mime_type, parse

DECODERS = frozenset({"aac", "h264", "mp3", "dts", "pcm_s24le"})

MP4 = """\
[in#0 @ 0x5] Format mov,mp4,m4a,3gp,3g2,mj2 probed with size=2048 and score=100
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'pipe:0':
  Duration: 00:01:02.50, start: 0.000000, bitrate: N/A
  Stream #0:0[0x1](und), 2, 1/10240: Video: h264 (High), yuv420p, 160x120 (default)
  Stream #0:1[0x2](und), 1, 1/44100: Audio: none (apac / 0x63617061), 48000 Hz (default)
  Stream #0:2[0x3](eng), 1, 1/44100: Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo
  Stream #0:3[0x4](deu), 1, 1/44100: Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo
"""


def test_an_mp4_is_read_with_its_streams_and_length():
    probe = parse(MP4, DECODERS)
    assert (probe.format, probe.score, probe.opened) == ("mov,mp4,m4a,3gp,3g2,mj2", 100, True)
    assert probe.demuxer == "mov" and probe.duration_seconds == 62.5
    assert [(s.index, s.kind, s.codec, s.language) for s in probe.streams] == [
        (0, "video", "h264", None),
        (1, "audio", "none", None),
        (2, "audio", "aac", "eng"),
        (3, "audio", "aac", "deu"),
    ]
    assert probe.is_media


def test_the_default_track_is_taken_only_if_it_can_be_decoded():
    probe = parse(MP4, DECODERS)
    assert probe.streams[1].default and not probe.streams[1].decodable
    assert probe.audio_track().index == 2  # the first decodable one


def test_among_decodable_tracks_the_default_one_wins():
    text = MP4.replace("48000 Hz (default)", "48000 Hz").replace(
        "deu), 1, 1/44100: Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo",
        "deu), 1, 1/44100: Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo (default)",
    )
    assert parse(text, DECODERS).audio_track().index == 3


def _probe(format_, score, *, opened=True, streams=()):
    return Probe(format=format_, score=score, duration_seconds=None, opened=opened,
                 streams=tuple(streams))  # fmt: skip


AUDIO = Stream(0, "audio", "mp3", None, default=False, decodable=True)
SUBTITLE = Stream(0, "subtitle", "subrip", None, default=False, decodable=True)


@pytest.mark.parametrize(
    ("probe", "media"),
    [
        (_probe("matroska,webm", 100), True),  # headers not read yet: the name is enough
        (_probe("mp3", 25, streams=[AUDIO]), True),  # a low guess that ffmpeg bore out
        (_probe("mp3", 1, opened=False), False),  # a low guess that failed to open
        (_probe("mp3", 25), False),  # a low guess with no sound found
        (_probe(None, 0), False),
        (_probe("png_pipe", 99), False),
        (_probe("gif", 100), False),
        (_probe("concat", 100), False),
        (_probe("srt", 100, streams=[SUBTITLE]), False),
        (_probe("matroska,webm", 100, streams=[SUBTITLE]), False),  # subtitles only
    ],
    ids=[
        "container",
        "low-but-opened",
        "low-not-opened",
        "low-silent",
        "unknown",
        "png",
        "gif",
        "concat",
        "srt",
        "mkv-subtitles-only",
    ],  # fmt: skip
)
def test_what_counts_as_media(probe, media):
    assert probe.is_media is media


def test_low_score_wording_is_read_too():
    text = "[in#0 @ 0x5] Format mp3 detected only with low score of 25, misdetection possible!"
    probe = parse(text, DECODERS)
    assert (probe.format, probe.score, probe.opened) == ("mp3", 25, False)


@pytest.mark.parametrize(
    ("brand", "mime"),
    [(b"isom", "video/mp4"), (b"qt  ", "video/quicktime"), (b"3gp4", "video/3gpp"),
     (b"M4A ", "audio/mp4")],
)  # fmt: skip
def test_the_mime_type_of_the_iso_family_follows_the_brand(brand, mime):
    head = b"\x00\x00\x00\x18ftyp" + brand + b"\x00" * 12
    assert mime_type(_probe("mov,mp4,m4a,3gp,3g2,mj2", 100), head) == mime


SOUND_AND_PICTURE = """\
  Stream #0:0[0x1](eng), 1, 1/48000: Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1(side), fltp, 384 kb/s (default)
  Stream #0:1, 1, 1/44100: Audio: pcm_s16le ([1][0][0][0] / 0x0001), 44100 Hz, 6 channels, s16
  Stream #0:2, 2, 1/14112000: Audio: mp3 (mp3float), 22050 Hz, mono, fltp, 64 kb/s
  Stream #0:3[0x2](und), 1, 1/44100: Audio: none (apac / 0x63617061), 48000 Hz (default)
  Stream #0:4[0x0], 1, 1/90000: Video: mjpeg (Baseline), yuvj420p(pc), 600x600 [SAR 1:1 DAR 1:1], 90k tbn (attached pic)
  Stream #0:5[0x3](und), 1, 1/12800: Video: h264 (High), yuv420p, 160x120, 25 fps (default)
"""  # noqa: E501 - ffmpeg's lines as it writes them


def test_an_audio_stream_says_its_sample_rate_and_channels():
    streams = parse(SOUND_AND_PICTURE, DECODERS).streams
    assert [(s.sample_rate, s.channel_layout, s.channels) for s in streams] == [
        (48000, "5.1(side)", 6),
        (44100, "6 channels", 6),
        (22050, "mono", 1),
        (48000, None, None),  # a codec ffmpeg does not know: no layout on the line
        (None, None, None),
        (None, None, None),
    ]


def test_an_attached_picture_is_told_apart_from_moving_pictures():
    streams = parse(SOUND_AND_PICTURE, DECODERS).streams
    assert [s.index for s in streams if s.attached_pic] == [4]
    assert not streams[5].attached_pic and streams[5].default


@pytest.mark.parametrize(
    ("layout", "count"),
    [("mono", 1), ("stereo", 2), ("2.1", 3), ("5.1(side)", 6), ("7.1(wide)", 8),
     ("7.1.4", 12), ("quad(side)", 4), ("hexadecagonal", 16), ("3 channels", 3),
     (None, None), ("unknown", None)],
)  # fmt: skip
def test_the_channel_count_of_a_layout(layout, count):
    assert channel_count(layout) == count
