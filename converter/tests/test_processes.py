"""Real converter processes (`python -m consumer`): crashes, stops, and sharing a queue."""

import os
import signal
import time
from collections import Counter
from pathlib import Path

import media
import pika
import pytest

from converter_service.handler import CRASHED
from mp3common.amqp import DELIVERY_LIMIT
from mp3testing import RABBITMQ_URL, queue_depth, wait_until

pytestmark = pytest.mark.stack  # converter processes on RabbitMQ and MongoDB

LONG_SECONDS = 600  # about 2 s of ffmpeg here: long enough to be caught in the middle


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    return media.long_clip(tmp_path_factory.mktemp("long"), LONG_SECONDS)


def _ffmpeg_running_under(pid: int, converting: bytes = b"ffmpeg") -> int | None:
    """The pid of an ffmpeg child of `pid` whose command holds `converting`, or None."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[1] == str(pid) and b"ffmpeg" in command and converting in command:
            return int(entry.name)
    return None


def _wait_for(predicate, timeout: float = 30.0):
    if not wait_until(predicate, timeout=timeout, interval=0.02):
        raise AssertionError("timed out")


def test_kill_9_mid_job_then_another_converter_completes_it_exactly_once(
    world, converters, long_clip
):
    first = converters("first")
    job_id = world.submit(long_clip)
    _wait_for(lambda: _ffmpeg_running_under(first.process.pid))
    # The pod dies: the converter and its ffmpeg, at once, with no chance to clean up.
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(10)
    assert world.jobs.get(job_id).state == "converting"

    second = converters("second")
    job = world.wait_final(job_id, timeout=60)
    assert job.state == "done" and job.attempts == 2
    assert [f["_id"] for f in world.mp3_files(job_id)] == [job.mp3_fid]
    assert abs(job.duration_seconds - LONG_SECONDS) <= 0.1
    told = world.messages(world.mp3_queue, timeout=5)
    time.sleep(0.5)
    told += world.messages(world.mp3_queue, timeout=0.2)
    assert [m["video_fid"] for m in told] == [str(job_id)]  # one message, so one mail
    assert queue_depth(world.video_queue) == 0
    assert world.messages(f"{world.video_queue}.dlq", timeout=0.2) == []
    # The dead converter's scratch folder was removed by the next one to start.
    assert [p.name for p in world.work_dir.iterdir()] == []
    assert second.process.poll() is None


def test_two_converters_drain_a_queue_each_job_done_once(world, converters, media_dir):
    first, second = converters("first"), converters("second")
    clip = media.make(media.SAMPLES["mp4 h264+aac"], media_dir)
    job_ids = [world.submit(clip, f"clip-{n}.mp4") for n in range(16)]
    jobs = [world.wait_final(job_id, timeout=60) for job_id in job_ids]
    assert {job.state for job in jobs} == {"done"}
    assert {job.attempts for job in jobs} == {1}
    for job_id in job_ids:
        assert len(world.mp3_files(job_id)) == 1
    told = world.messages(world.mp3_queue, timeout=5, count=len(job_ids))
    assert Counter(m["video_fid"] for m in told) == Counter(str(j) for j in job_ids)
    # Both took a share (prefetch 1: neither hoards the queue).
    for converter in (first, second):
        converted = [
            line
            for line in converter.log_lines()
            if line["message"].startswith("job ") and " done: " in line["message"]
        ]
        assert converted, f"{converter.log_path.name} converted nothing"


def test_sigterm_lets_the_current_job_finish_then_exits(world, converters, long_clip):
    converter = converters("stopping")
    job_id = world.submit(long_clip)
    _wait_for(lambda: _ffmpeg_running_under(converter.process.pid))
    converter.process.send_signal(signal.SIGTERM)
    assert converter.process.wait(30) == 0
    job = world.jobs.get(job_id)
    assert job.state == "done" and job.attempts == 1
    assert [m["state"] for m in world.messages(world.mp3_queue, timeout=5)] == ["done"]
    assert queue_depth(world.video_queue) == 0


def test_sigterm_past_the_grace_kills_ffmpeg_and_hands_the_job_back(world, converters, long_clip):
    converter = converters("impatient", STOP_GRACE_SECONDS="1")
    job_id = world.submit(long_clip)
    _wait_for(lambda: _ffmpeg_running_under(converter.process.pid))
    converter.process.send_signal(signal.SIGTERM)
    assert converter.process.wait(15) == 0
    assert not _ffmpeg_running_under(converter.process.pid)
    job = world.jobs.get(job_id)
    assert job.state == "converting"
    assert queue_depth(world.video_queue) == 1  # handed back, not lost
    assert list(world.work_dir.iterdir()) == []  # its scratch folder went with it
    # A clean stop: counted as handed back, not as a failed attempt, and logged as a warning.
    assert job.handed_back == 1 and job.failed_attempts == 0
    lines = converter.log_lines()
    assert [line["message"] for line in lines if line["level"] in ("ERROR", "CRITICAL")] == []
    assert [
        line["level"] for line in lines if line["message"].startswith("handing the message back")
    ] == ["WARNING"]
    assert all("exc_info" not in line for line in lines)

    converters("next")
    assert world.wait_final(job_id, timeout=60).state == "done"
    assert len(world.messages(world.mp3_queue, timeout=5)) == 1


def test_ffmpeg_killed_by_a_signal_is_retried_not_blamed_on_the_file(world, converters, long_clip):
    """The out-of-memory killer takes ffmpeg, not the converter: the job is tried again
    (requeued), not failed as "could not be converted"."""
    first = converters("first")
    job_id = world.submit(long_clip)
    _wait_for(lambda: _ffmpeg_running_under(first.process.pid, b"libmp3lame"))
    os.kill(_ffmpeg_running_under(first.process.pid, b"libmp3lame"), signal.SIGKILL)
    job = world.wait_final(job_id, timeout=60)
    assert (job.state, job.reason) == ("done", None)
    assert (job.attempts, job.failed_attempts) == (2, 1)
    assert [m["state"] for m in world.messages(world.mp3_queue, timeout=5)] == ["done"]
    assert any("ffmpeg was killed by SIGKILL" in str(line) for line in first.log_lines())
    assert first.process.poll() is None  # the converter itself went on


def _spend_deliveries(queue: str, count: int) -> None:
    """Hand the queue's one message back `count` times, as consumers that died would."""
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        deadline = time.monotonic() + 10
        while count and time.monotonic() < deadline:
            method = channel.basic_get(queue)[0]
            if method is None:  # a requeued message takes a moment to be ready again
                time.sleep(0.02)
                continue
            channel.basic_nack(method.delivery_tag, requeue=True)
            count -= 1
        assert count == 0, "the message did not come back"
    finally:
        connection.close()


def test_a_converter_dying_on_the_last_delivery_still_ends_the_job_and_tells_its_owner(
    world, converters, long_clip
):
    """The limit the README named: killed on the last delivery with fewer than two crashes
    before, the message is dead-lettered unseen. The reaper on video.dlq fails the job and
    the owner is told."""
    job_id = world.submit(long_clip)
    _spend_deliveries(world.video_queue, DELIVERY_LIMIT)  # the next delivery is the last
    first = converters("first")
    _wait_for(lambda: _ffmpeg_running_under(first.process.pid, b"libmp3lame"))
    assert world.jobs.get(job_id).crashed_attempts == 0  # so it was tried, not given up
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(10)
    assert world.jobs.get(job_id).state == "converting"
    converters("second")  # its reaper takes the dead letter
    job = world.wait_final(job_id, timeout=30)
    assert (job.state, job.reason) == ("failed", CRASHED)
    [told] = world.messages(world.mp3_queue, timeout=5)
    assert (told["video_fid"], told["state"], told["reason"]) == (str(job_id), "failed", CRASHED)
    assert world.messages(f"{world.video_queue}.dlq", timeout=0.5) == []  # reaped
    assert queue_depth(world.video_queue) == 0
