"""Tags and cover art: read from the source, written in each format, read back with mutagen."""

import base64

import media
import pytest
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus

from converter_service import tags
from converter_service.extract_audio import extract_audio
from mp3common.media import Stream
from mp3common.options import parse_options

FFMETADATA = """\
;FFMETADATA1
major_brand=isom
Title=Sunset\\; at \\= sea
artist=Art\\\\ist
comment=first line\\
second line
# a comment
date=2024
title=a second title is ignored
[STREAM]
title=the stream's, not the file's
"""


def test_ffmetadata_is_unescaped_and_read_up_to_its_first_section():
    assert tags.parse_ffmetadata(FFMETADATA) == {
        "major_brand": "isom",
        "title": "Sunset; at = sea",
        "artist": "Art\\ist",
        "comment": "first line\nsecond line",
        "date": "2024",
    }


@pytest.mark.parametrize(
    ("metadata", "filename", "expected"),
    [
        ({}, "holiday.2024.mp4", {"title": "holiday.2024"}),
        ({}, None, {}),
        ({"title": "  ", "artist": " Ann "}, "clip.mov", {"title": "clip", "artist": "Ann"}),
        ({"creation_time": "2024-05-01T10:00:00.000000Z"}, "a.mp4",
         {"title": "a", "date": "2024-05-01"}),
        ({"date": "1999", "creation_time": "2024-05-01T10:00:00Z"}, "a.mp4",
         {"title": "a", "date": "1999"}),
        ({"title": "x" * 5000}, "a.mp4", {"title": "x" * tags.MAX_TAG_CHARS}),
    ],
)  # fmt: skip
def test_the_tags_taken_from_the_source(metadata, filename, expected):
    assert tags.source_tags(metadata, filename) == expected


def _convert(source, tmp_path, fmt="mp3", filename="clip.mp4"):
    options, _ = parse_options({"format": fmt})
    target = tmp_path / options.output.output_name("out")
    return extract_audio(source, target, ffmpeg=media.FFMPEG, options=options,
                         filename=filename), target  # fmt: skip


def _cover_of(fmt: str, target) -> bytes | None:
    if fmt == "mp3":
        pictures = ID3(target).getall("APIC")
        return pictures[0].data if pictures else None
    if fmt == "m4a":
        return bytes(MP4(target).tags["covr"][0]) if "covr" in MP4(target).tags else None
    if fmt == "flac":
        pictures = FLAC(target).pictures
        return pictures[0].data if pictures else None
    blocks = OggOpus(target).tags.get("metadata_block_picture")
    return Picture(base64.b64decode(blocks[0])).data if blocks else None


def test_mp3_gets_id3v2_3_with_every_tag_and_a_front_cover(media_dir, tmp_path):
    audio, target = _convert(media.tagged_video(media_dir), tmp_path)
    assert audio.tags == media.TAGS and audio.cover
    id3 = ID3(target, translate=False)  # the frames as stored, not upgraded to 2.4's
    assert id3.version == (2, 3, 0)
    assert [id3[frame].text[0] for frame in ("TIT2", "TPE1", "TALB", "TYER", "TDAT")] == [
        "Sunset; at = sea #1", "Ann Example", "Holidays\\2024", "2024", "0105",
    ]  # fmt: skip
    assert id3.getall("COMM")[0].text == ["first line\nsecond line"]
    [apic] = id3.getall("APIC")
    assert (apic.type, apic.mime) == (3, "image/jpeg")  # 3: the front cover
    assert media.picture(apic.data) == ("JPEG", (160, 120))  # a frame of the 160x120 video


@pytest.mark.parametrize("fmt", ["m4a", "opus", "flac"])
def test_other_formats_get_their_own_tags_and_the_cover(fmt, media_dir, tmp_path):
    audio, target = _convert(media.tagged_video(media_dir), tmp_path, fmt)
    assert audio.tags == media.TAGS and audio.cover
    if fmt == "m4a":
        found = MP4(target).tags
        keys = {"title": "©nam", "artist": "©ART", "album": "©alb", "date": "©day",
                "comment": "©cmt"}  # fmt: skip
        assert {name: found[key] for name, key in keys.items()} == {
            name: [value] for name, value in media.TAGS.items()
        }
    else:
        found = (FLAC if fmt == "flac" else OggOpus)(target).tags
        assert {name: found[name] for name in media.TAGS} == {
            name: [value] for name, value in media.TAGS.items()
        }
    assert media.picture(_cover_of(fmt, target)) == ("JPEG", (160, 120))


def test_wav_gets_riff_info_and_no_cover(media_dir, tmp_path):
    audio, target = _convert(media.tagged_video(media_dir), tmp_path, "wav")
    assert audio.tags == media.TAGS and not audio.cover
    # ffmpeg reads the RIFF INFO chunk back (INAM, IART, IPRD, ICRD, ICMT).
    found = tags.read_source_tags(media.FFMPEG, target, demuxer="wav", filename=None)
    assert found == media.TAGS


@pytest.mark.parametrize("video", [True, False], ids=["video", "audio-only"])
def test_an_attached_picture_is_the_cover_at_most_600_px(video, media_dir, tmp_path):
    """800x800, beside a 160x120 video: the picture wins, made 600x600."""
    audio, target = _convert(media.with_attached_picture(media_dir, video=video), tmp_path)
    assert audio.cover
    assert media.picture(_cover_of("mp3", target)) == ("JPEG", (600, 600))


def test_audio_without_a_picture_gets_no_cover(media_dir, tmp_path):
    source = media.make(media.SAMPLES["audio only m4a"], media_dir)
    audio, target = _convert(source, tmp_path, filename="voice memo.m4a")
    assert not audio.cover and ID3(target).getall("APIC") == []
    assert audio.tags == {"title": "voice memo"}
    assert ID3(target)["TIT2"].text == ["voice memo"]


def test_a_tag_that_cannot_be_written_does_not_fail_the_job(
    media_dir, tmp_path, monkeypatch, caplog
):
    def broken(path, found, cover):
        raise ValueError("a tag mutagen refuses")

    monkeypatch.setitem(tags._WRITERS, "mp3", broken)
    audio, target = _convert(media.tagged_video(media_dir), tmp_path)
    assert not audio.cover and audio.duration_seconds > 2.9
    assert media.decodes_cleanly(target)
    assert "could not write the tags" in caplog.text


def test_a_cover_that_cannot_be_made_does_not_fail_the_job(
    media_dir, tmp_path, monkeypatch, caplog
):
    nowhere = Stream(9, "video", "h264", None, default=False, decodable=True)  # not in the file
    monkeypatch.setattr(tags, "cover_source", lambda probe: (nowhere, None))
    audio, target = _convert(media.tagged_video(media_dir), tmp_path)
    assert not audio.cover and audio.tags == media.TAGS
    assert ID3(target)["TIT2"].text == [media.TAGS["title"]]
    assert "could not make a cover" in caplog.text
