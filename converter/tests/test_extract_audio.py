"""ffmpeg on every kind of input the table in media.py names, without a broker or database."""

import os
import threading
import time

import media
import pytest
from mutagen.mp3 import MP3

from converter_service.extract_audio import (
    Interrupted,
    Timeouts,
    UnusableMedia,
    extract_audio,
    ffmpeg_command,
)


@pytest.mark.parametrize("name", list(media.SAMPLES))
def test_each_input_becomes_an_mp3_or_a_reason(name, media_dir, tmp_path):
    sample = media.SAMPLES[name]
    source = media.make(sample, media_dir)
    target = tmp_path / "out.mp3"
    if sample.reason:
        with pytest.raises(UnusableMedia) as error:
            extract_audio(source, target, ffmpeg=media.FFMPEG)
        assert error.value.reason == sample.reason
        return
    audio = extract_audio(source, target, ffmpeg=media.FFMPEG)
    assert abs(audio.duration_seconds - media.SECONDS) <= 0.1, audio
    assert audio.sample_rate == sample.sample_rate
    assert audio.size == target.stat().st_size
    info = MP3(target).info  # what a player reads, independently of our result
    assert abs(info.length - media.SECONDS) <= 0.1
    assert media.decodes_cleanly(target)


def test_the_video_is_never_decoded():
    command = ffmpeg_command("ffmpeg", "in.mp4", "out.mp3", ["-q:a", "2"])
    assert command[command.index("-map") + 1] == "0:a:0"
    assert "-vn" in command and "libmp3lame" in command
    assert "-ar" not in command  # the sample rate stays the source's


def test_constant_bitrate_on_request(media_dir, tmp_path):
    source = media.make(media.SAMPLES["mp4 h264+aac"], media_dir)
    audio = extract_audio(
        source, tmp_path / "out.mp3", ffmpeg=media.FFMPEG, quality_args=["-b:a", "128k"]
    )
    assert abs(audio.bitrate - 128_000) < 1000


def _ffmpeg_children() -> list[str]:
    me = str(os.getpid())
    children = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if fields[1] == me and fields[0] != "Z":
                children.append(pid)
        except OSError:
            continue
    return children


def test_a_hung_ffmpeg_is_killed_at_the_time_limit(tmp_path):
    """A named pipe nobody writes to: ffmpeg blocks reading it, as a hung process would."""
    fifo = tmp_path / "stuck.mp4"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(UnusableMedia, match="took longer than 1 s"):
        extract_audio(
            fifo, tmp_path / "out.mp3", ffmpeg=media.FFMPEG, timeouts=Timeouts(base_seconds=1)
        )
    assert time.monotonic() - started < 5
    assert _ffmpeg_children() == []


def test_a_stop_request_kills_ffmpeg_and_hands_the_job_back(tmp_path):
    fifo = tmp_path / "stuck.mp4"
    os.mkfifo(fifo)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    with pytest.raises(Interrupted):
        extract_audio(fifo, tmp_path / "out.mp3", ffmpeg=media.FFMPEG, should_stop=stop.is_set)
    assert _ffmpeg_children() == []


def test_the_time_limit_grows_with_the_media():
    timeouts = Timeouts(base_seconds=30, per_media_second=0.5, max_seconds=600)
    assert timeouts.limit(header_read=False, duration=None) == 30
    assert timeouts.limit(header_read=True, duration=60) == 60
    assert timeouts.limit(header_read=True, duration=10_000) == 600
    assert timeouts.limit(header_read=True, duration=None) == 600
