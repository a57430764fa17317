"""The download's file name: the UTF-8 one, and an ASCII one old clients can read."""

import pytest

from gateway_service.downloads import _disposition, output_name
from mp3common.options import FORMATS


@pytest.mark.parametrize(
    ("upload", "ascii_name"),
    [
        ("holiday clip.mov", "holiday clip.mp3"),
        ("лекция 1.mp4", "lektsiya 1.mp3"),  # was " 1.mp3": the name lost, a leading space
        ("Ελληνικά.mkv", "Ellinika.mp3"),
        ("日本語の動画.mov", "RiBenYunoDongHua.mp3"),
        ("Überraschung 🎉.mp4", "Uberraschung tada.mp3"),
        ('say "hï"; rm -rf\\.mp4', "say hi rm -rf.mp3"),
        ("。.mp4", "audio.mp3"),  # nothing left but the extension: not a hidden ".mp3"
        ("лекция 1.mp4", "lektsiya 1.opus"),
        ("。.mp4", "audio.m4a"),
    ],
)
def test_the_ascii_fallback_keeps_the_name_readable(upload, ascii_name):
    name = output_name(upload, FORMATS[ascii_name.rsplit(".", 1)[1]])
    parameters = _disposition(name)
    assert parameters["filename"] == ascii_name
    assert not parameters["filename"].startswith((" ", "."))
    parameters["filename"].encode("ascii")
