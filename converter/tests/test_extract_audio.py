"""ffmpeg on every kind of input the table in media.py names, without a broker or database."""

import os
import stat
import subprocess
import threading
import time

import media
import pytest
from mutagen.mp3 import MP3

from converter_service.extract_audio import (
    FfmpegKilled,
    Interrupted,
    Timeouts,
    UnusableMedia,
    extract_audio,
    ffmpeg_command,
)
from mp3common.transient import transient


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


@pytest.mark.parametrize(
    ("step", "message"),
    [("libmp3lame", "ffmpeg was killed by SIGKILL"), ("debug", "ffmpeg's probe was killed")],
    ids=["converting", "probing"],
)
def test_ffmpeg_killed_by_a_signal_is_the_machines_failure_not_the_files(
    media_dir, tmp_path, step, message
):
    """The out-of-memory killer's SIGKILL, mimicked: an ffmpeg that kills itself at one
    step (the probe runs with `-v debug`, the conversion with libmp3lame). A transient
    error, retried; not "the file could not be converted" or "not media"."""
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(
        f'#!/bin/sh\ncase "$*" in *{step}*) kill -KILL $$ ;; esac\nexec "{media.FFMPEG}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    source = media.make(media.SAMPLES["mp4 h264+aac"], media_dir)
    with pytest.raises(FfmpegKilled, match=message) as killed:
        extract_audio(source, tmp_path / "out.mp3", ffmpeg=str(wrapper))
    assert transient(killed.value)
    assert _ffmpeg_children() == []


def test_media_longer_than_the_limit_is_refused_before_it_is_converted(tmp_path):
    """An hour of silent Opus: ~1.4 MB to upload, 14 s of a converter and 14 MB of MP3 once;
    refused from the probe, before ffmpeg encodes anything."""
    source = media.silent_opus(tmp_path, 3600)
    assert source.stat().st_size < 2_000_000
    with pytest.raises(UnusableMedia) as refused:
        extract_audio(source, tmp_path / "out.mp3", ffmpeg=media.FFMPEG, max_media_seconds=1800)
    assert (
        refused.value.reason
        == "the file is 1 h long; this service converts at most 30 min per file"
    )
    assert refused.value.kind == "too_long"
    # Refused from the probe: ffmpeg never started encoding (the -t path writes the MP3).
    assert not (tmp_path / "out.mp3").exists()


def test_media_whose_container_does_not_say_its_length_is_stopped_at_the_limit(tmp_path):
    """WebM written to a pipe has no duration: ffmpeg stops a second past the limit (-t)
    and the result is refused all the same."""
    with (tmp_path / "stream.webm").open("wb") as out:
        subprocess.run(
            [media.FFMPEG, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"]
            + ["anullsrc=r=48000:cl=mono:d=300", "-c:a", "libopus", "-f", "webm", "pipe:1"],
            stdout=out,
            check=True,
            timeout=120,
        )
    with pytest.raises(UnusableMedia) as refused:
        extract_audio(
            tmp_path / "stream.webm",
            tmp_path / "out.mp3",
            ffmpeg=media.FFMPEG,
            max_media_seconds=60,
        )
    assert refused.value.kind == "too_long"
    assert "this service converts at most 1 min per file" in refused.value.reason
    assert MP3(tmp_path / "out.mp3").info.length < 62  # ffmpeg stopped at the limit


def test_the_limit_is_a_flag_of_the_command():
    command = ffmpeg_command("ffmpeg", "in", "out.mp3", ["-q:a", "2"], max_seconds=21600)
    assert command[command.index("-t") + 1] == "21601"
    assert "-t" not in ffmpeg_command("ffmpeg", "in", "out.mp3", ["-q:a", "2"])
