"""The converter's metrics after whole jobs through the real Consumer, GridFS and queues.

They are read from prometheus_client's registry in this process, where the Consumer runs.
"""

import threading

import media
import pytest
from prometheus_client import REGISTRY

from converter_service import build_consumer
from converter_service import settings as settings_module
from converter_service.extract_audio import extract_audio
from converter_service.failures import UnusableMedia


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    return {
        "done": value("converter_jobs_finished_total", state="done"),
        "failed": value("converter_jobs_finished_total", state="failed"),
        "no_audio": value("converter_jobs_failed_total", kind="no_audio"),
        "ffmpeg runs": value("converter_ffmpeg_seconds_count"),
        "ffmpeg seconds": value("converter_ffmpeg_seconds_sum"),
        "jobs timed": value("converter_job_seconds_count"),
        "job seconds": value("converter_job_seconds_sum"),
        "video bytes": value("converter_video_bytes_total"),
        "mp3 bytes": value("converter_mp3_bytes_total"),
    }


@pytest.mark.stack
def test_jobs_are_counted_once_by_state_and_kind_with_times_and_bytes(world, media_dir):
    good = media.make(media.SAMPLES["mp4 h264+aac"], media_dir)
    silent = media.make(media.SAMPLES["video without audio"], media_dir)
    before = snapshot()
    consumer = build_consumer(world.environ())
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        done_id, failed_id = world.submit(good), world.submit(silent)
        # The mp3 messages are published after the handler returned: its counts are in.
        assert len(world.messages(world.mp3_queue, timeout=30, count=2)) == 2
        world.publish(done_id)  # a redelivery of a finished job counts nothing again
        assert len(world.messages(world.mp3_queue, timeout=10)) == 1
    finally:
        consumer.stop()
        thread.join(30)
    after = snapshot()
    grown = {name: after[name] - before[name] for name in after}
    done, failed = world.jobs.get(done_id), world.jobs.get(failed_id)
    assert (done.state, failed.state) == ("done", "failed")
    assert (grown["done"], grown["failed"], grown["no_audio"]) == (1, 1, 1)
    assert (grown["ffmpeg runs"], grown["jobs timed"]) == (1, 1)
    assert 0 < grown["ffmpeg seconds"] <= grown["job seconds"] < 30
    # Both videos were read from GridFS; only one MP3 was written.
    assert grown["video bytes"] == good.stat().st_size + silent.stat().st_size
    assert grown["mp3 bytes"] == done.mp3_size


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("video without audio", "no_audio"),
        ("truncated mp4", "damaged"),
        ("random bytes", "not_media"),
        ("zero-length file", "empty_file"),
    ],
)
def test_each_failure_has_a_kind_for_the_counter(name, kind, media_dir, tmp_path):
    with pytest.raises(UnusableMedia) as failure:
        extract_audio(
            media.make(media.SAMPLES[name], media_dir),
            tmp_path / "out.mp3",
            ffmpeg=settings_module.load({}).ffmpeg_binary,
        )
    assert failure.value.kind == kind


def test_the_metrics_port_is_off_unless_set():
    assert settings_module.load({}).metrics_port is None
    assert settings_module.load({"METRICS_PORT": "0"}).metrics_port is None
    assert settings_module.load({"METRICS_PORT": "9110"}).metrics_port == 9110
