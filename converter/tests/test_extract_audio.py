"""ffmpeg on every kind of input the table in media.py names, without a broker or database."""

import os
import stat
import subprocess
import threading
import time
from types import SimpleNamespace

import media
import pytest
from mutagen.mp3 import MP3

from converter_service.extract_audio import Progress, extract_audio
from converter_service.failures import FfmpegKilled, Interrupted, UnusableMedia
from converter_service.ffmpeg_process import Timeouts
from mp3common.options import parse_options
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


def test_constant_bitrate_on_request(media_dir, tmp_path):
    source = media.make(media.SAMPLES["mp4 h264+aac"], media_dir)
    options, _ = parse_options({"quality": "128k"})
    audio = extract_audio(source, tmp_path / "out.mp3", ffmpeg=media.FFMPEG, options=options)
    assert abs(audio.bitrate - 128_000) < 1000


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
    assert media.ffmpeg_children() == []


def test_a_stop_request_kills_ffmpeg_and_hands_the_job_back(tmp_path):
    fifo = tmp_path / "stuck.mp4"
    os.mkfifo(fifo)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    with pytest.raises(Interrupted):
        extract_audio(fifo, tmp_path / "out.mp3", ffmpeg=media.FFMPEG, should_stop=stop.is_set)
    assert media.ffmpeg_children() == []


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
    assert media.ffmpeg_children() == []


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


class Withdrawn(Exception):
    """What the job watch raises when the job is cancelled (here, from the test)."""


def test_progress_is_reported_and_an_exception_from_it_kills_ffmpeg(media_dir, tmp_path):
    """An hour of silence takes seconds to convert: per cent and eta come in on the way,
    and the report that raises (a cancelled job) stops ffmpeg and leaves no output."""
    source = media.silent_opus(media_dir, 3600)
    reports = []

    def on_progress(per_cent, eta_seconds):
        reports.append((per_cent, eta_seconds))
        if per_cent is not None and per_cent > 0:
            raise Withdrawn

    with pytest.raises(Withdrawn):
        extract_audio(source, tmp_path / "out.mp3", ffmpeg=media.FFMPEG, on_progress=on_progress)
    assert media.ffmpeg_children() == []
    assert (None, None) in reports  # the probe's polls: nothing to tell yet
    per_cent, eta_seconds = reports[-1]
    assert 0 < per_cent < 100 and eta_seconds > 0
    assert not (tmp_path / "cover.jpg").exists()


def test_passes_share_the_progress_half_and_half():
    """With a loudness target, pass 1 (measuring) is the first half."""
    reports = []
    options, _ = parse_options({"normalize": "-16"})
    plan = SimpleNamespace(span=100.0, passes=2, options=options)
    progress = Progress(lambda per_cent, eta: reports.append(per_cent), plan)
    progress.of_pass(0)(50.0)
    progress.of_pass(1)(None)  # no time yet: reported as nothing new
    progress.of_pass(1)(50.0)
    progress.of_pass(1)(120.0)  # past the span (the encoder's padding): 100 at most
    assert reports == [25.0, None, 75.0, 100.0]
