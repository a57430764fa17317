"""Whole jobs through the real Consumer: GridFS in, MP3 in GridFS, job record, `mp3` message."""

import io
import threading
import time
from pathlib import Path

import media
import pytest
from bson import ObjectId
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from prometheus_client import REGISTRY

from converter_service import build_consumer
from converter_service import settings as settings_module
from converter_service.handler import CRASHED, GAVE_UP, INTERNAL_ERROR, JobHandler
from converter_service.storage import Storage
from mp3common.amqp import DELIVERY_LIMIT, Consumer, Delivery, PermanentError
from mp3common.jobs import MP3_BUCKET, AttemptEnd, now
from mp3common.mongo import client
from mp3testing import RABBITMQ_URL, RunningConsumer, nothing_returns, wait_until

pytestmark = pytest.mark.stack  # jobs in MongoDB, messages on RabbitMQ

WEEK = 7 * 86400  # OUTPUT_RETENTION_SECONDS and FAILED_VIDEO_RETENTION_SECONDS by default


def _kept_for(job) -> int:
    """How long after it finished the job's output or video expires, in whole seconds."""
    return round((job.expires_at - job.finished_at).total_seconds())


@pytest.fixture(scope="module")
def converter(module_world):
    """One converter for the whole table: it also proves a bad file never stalls the next."""
    with RunningConsumer(build_consumer(module_world.environ())):
        yield module_world


@pytest.mark.parametrize("name", list(media.SAMPLES))
def test_each_upload_ends_done_with_its_mp3_or_failed_with_its_reason(name, converter, media_dir):
    world = converter
    sample = media.SAMPLES[name]
    job_id = world.submit(media.make(sample, media_dir), sample.filename)
    job = world.wait_final(job_id)
    [told] = world.messages(world.mp3_queue, timeout=5)
    assert told["video_fid"] == str(job_id) and told["username"] == "ann@example.com"
    if sample.reason:
        assert (job.state, job.reason) == ("failed", sample.reason)
        assert _kept_for(job) == WEEK  # the video, for a retry
        assert (told["state"], told["reason"], told["mp3_fid"]) == ("failed", sample.reason, None)
        [dead] = world.messages(f"{world.video_queue}.dlq", timeout=5)
        assert dead["video_fid"] == str(job_id)
        assert world.videos.find({"_id": job_id}).to_list(), "a failed job's video is kept"
        return
    assert job.state == "done", job.reason
    assert (told["state"], told["mp3_fid"]) == ("done", str(job.mp3_fid))
    mp3 = world.mp3s.open_download_stream(job.mp3_fid).read()
    assert len(mp3) == job.mp3_size
    info = MP3(io.BytesIO(mp3)).info
    assert abs(info.length - media.SECONDS) <= 0.1
    assert abs(job.duration_seconds - media.SECONDS) <= 0.1
    assert info.sample_rate == sample.sample_rate
    assert not world.videos.find({"_id": job_id}).to_list(), "the source video is deleted"
    assert world.mp3s.find({"_id": job.mp3_fid}).next().filename.endswith(".mp3")
    assert world.messages(f"{world.video_queue}.dlq", timeout=0.2) == []
    assert job.tags == {"title": Path(sample.filename).stem} and _kept_for(job) == WEEK


def test_nothing_is_left_in_the_scratch_folder(converter):
    assert list(converter.work_dir.iterdir()) == []


def test_a_redelivered_job_makes_no_second_mp3_and_no_second_mail(world, media_dir):
    job_id = world.submit(media.make(media.SAMPLES["mp4 h264+aac"], media_dir))
    with RunningConsumer(build_consumer(world.environ())):
        first = world.wait_final(job_id)
        assert len(world.messages(world.mp3_queue, timeout=5)) == 1
        world.publish(job_id)  # the same message again, as after a lost ack
        again = world.messages(world.mp3_queue, timeout=5)
        # Not mailed yet: reported again (the notifier's claim keeps it to one mail) ...
        assert [m["mp3_fid"] for m in again] == [str(first.mp3_fid)]
        world.jobs.mark_notified(job_id)
        world.publish(job_id)
        time.sleep(1)
        assert world.messages(world.mp3_queue, timeout=1) == []  # ... and once mailed, not.
    assert [f["_id"] for f in world.mp3_files(job_id)] == [first.mp3_fid]
    assert world.jobs.get(job_id).attempts == 1
    assert nothing_returns(world.video_queue)  # every delivery acked


def test_a_redelivered_failed_job_is_dead_lettered_again_without_a_second_mail(world, media_dir):
    job_id = world.submit(media.make(media.SAMPLES["video without audio"], media_dir))
    with RunningConsumer(build_consumer(world.environ())):
        world.wait_final(job_id)
        assert len(world.messages(world.mp3_queue, timeout=5)) == 1
        world.jobs.mark_notified(job_id)
        world.publish(job_id)
        assert len(world.messages(f"{world.video_queue}.dlq", timeout=5, count=2)) == 2
    assert world.messages(world.mp3_queue, timeout=0.5) == []
    assert world.jobs.get(job_id).attempts == 1


def test_an_mp3_left_by_an_interrupted_attempt_is_replaced(world, media_dir):
    job_id = world.upload(media.make(media.SAMPLES["mp4 h264+aac"], media_dir))
    world.jobs.start(job_id)  # attempt 1 ... stored its MP3, then died before `done`
    orphan = world.mp3s.upload_from_stream(
        "clip.mp3", io.BytesIO(b"half"), metadata={"job_id": job_id, "attempt": 1}
    )
    world.publish(job_id)
    with RunningConsumer(build_consumer(world.environ())):
        job = world.wait_final(job_id)
    assert job.state == "done" and job.attempts == 2
    assert [f["_id"] for f in world.mp3_files(job_id)] == [job.mp3_fid] != [orphan]


def test_chunks_of_an_upload_interrupted_mid_mp3_are_removed(world, media_dir):
    """Attempt 1 died while storing its MP3: chunks written, no file document yet."""
    job_id = world.upload(media.make(media.SAMPLES["mp4 h264+aac"], media_dir))
    world.jobs.start(job_id)
    half_written = ObjectId()
    world.jobs.note_mp3_upload(job_id, half_written)
    chunks = world.database[f"{MP3_BUCKET}.chunks"]
    chunks.insert_many([{"files_id": half_written, "n": n, "data": b"x" * 10} for n in range(3)])
    world.publish(job_id)
    with RunningConsumer(build_consumer(world.environ())):
        job = world.wait_final(job_id)
    assert job.state == "done" and job.attempts == 2
    assert chunks.count_documents({"files_id": half_written}) == 0
    assert chunks.count_documents({"files_id": job.mp3_fid}) > 0
    assert job.mp3_fid in job.mp3_uploads


def test_a_job_whose_video_is_gone_fails_with_a_reason(world):
    job_id = ObjectId()
    world.jobs.create(
        job_id, owner="ann@example.com", filename="x.mp4", size=1, content_type=None, request_id=""
    )
    world.publish(job_id)
    with RunningConsumer(build_consumer(world.environ())):
        job = world.wait_final(job_id)
    assert job.reason == "the uploaded file is no longer stored"
    assert world.messages(world.mp3_queue, timeout=5)[0]["state"] == "failed"


def test_a_message_without_a_job_id_is_dead_lettered(world):
    world.publisher.publish(world.video_queue, {"video_fid": "not-an-id"})
    with RunningConsumer(build_consumer(world.environ())):
        assert world.messages(f"{world.video_queue}.dlq", timeout=10) == [
            {"video_fid": "not-an-id"}
        ]


def test_keep_source_video_keeps_it(world, media_dir):
    job_id = world.submit(media.make(media.SAMPLES["audio only m4a"], media_dir))
    with RunningConsumer(build_consumer(world.environ(KEEP_SOURCE_VIDEO="true"))):
        assert world.wait_final(job_id).state == "done"
    assert world.videos.find({"_id": job_id}).to_list()


def test_mongodb_down_retries_then_tells_the_owner_when_it_can(world, media_dir):
    """MongoDB unreachable (nothing listens on the port): retried, bounded, dead-lettered."""
    job_id = world.submit(media.make(media.SAMPLES["mp4 h264+aac"], media_dir))
    settings = settings_module.load(world.environ())
    down = client("mongodb://127.0.0.1:9/", app_name="converter-tests", timeout_ms=200)
    attempts = []
    handler = JobHandler(settings, down[world.db_name])

    def counting(delivery, stopping):
        attempts.append(delivery.delivery_count)
        return handler(delivery, stopping)

    consumer = Consumer(RABBITMQ_URL, world.video_queue, counting, publishes_to=[world.mp3_queue])
    with RunningConsumer(consumer):
        dead = world.messages(f"{world.video_queue}.dlq", timeout=30)
    assert [m["video_fid"] for m in dead] == [str(job_id)]
    # Retried, not forever: RabbitMQ 3.10 delivers it limit + 1 times, counted 0..limit.
    assert attempts == list(range(DELIVERY_LIMIT + 1))
    assert world.jobs.get(job_id).state == "queued"  # nothing could be written
    assert list(world.work_dir.iterdir()) == []


def test_on_its_last_delivery_a_failing_job_is_failed_for_its_owner(world, media_dir):
    """A fault of this machine that outlasts the retries (its scratch folder is missing):
    the owner hears of it, rather than nothing."""
    job_id = world.submit(media.make(media.SAMPLES["mp4 h264+aac"], media_dir))
    consumer = build_consumer(world.environ(CONVERTER_WORK_DIR=str(world.work_dir / "gone")))
    with RunningConsumer(consumer):
        job = world.wait_final(job_id)
        assert world.messages(f"{world.video_queue}.dlq", timeout=10)
    assert (job.state, job.reason) == ("failed", GAVE_UP)
    assert job.attempts >= 2
    [told] = world.messages(world.mp3_queue, timeout=5)
    assert (told["state"], told["reason"]) == ("failed", GAVE_UP)


def _crashed_twice(world, media_dir, counted=None):
    """A job two converters started and never finished, with nothing recorded (kill -9,
    out of memory), unless `counted` says those attempts ended with a word."""
    job_id = world.upload(media.make(media.SAMPLES["mp4 h264+aac"], media_dir))
    world.jobs.start(job_id)
    world.jobs.start(job_id)
    for how, times in (counted or {}).items():
        for _ in range(times):
            world.jobs.note_attempt_end(job_id, how)
    return job_id


def _deliver(world, job_id, delivery_count, delivery_limit=DELIVERY_LIMIT):
    handler = JobHandler(settings_module.load(world.environ()), world.database)
    delivery = Delivery(
        {"video_fid": str(job_id)}, {}, delivery_count > 0, delivery_count, delivery_limit
    )
    return handler(delivery, threading.Event())


@pytest.mark.parametrize("limit", [DELIVERY_LIMIT, 2])
def test_on_the_last_delivery_a_job_that_keeps_crashing_is_failed_for_its_owner(
    world, media_dir, limit
):
    """The last delivery is the one whose count reached the limit the consumer declared
    its queue with (RabbitMQ 3.10 delivers limit + 1 times), whatever that limit is."""
    job_id = _crashed_twice(world, media_dir)
    with pytest.raises(PermanentError) as raised:
        _deliver(world, job_id, delivery_count=limit, delivery_limit=limit)
    job = world.jobs.get(job_id)
    assert job.state == "failed" and job.reason == CRASHED
    (told,) = raised.value.outgoing
    assert told.queue == world.mp3_queue and told.body["state"] == "failed"


@pytest.mark.parametrize(
    ("delivery_count", "counted"),
    [
        (1, {}),
        (DELIVERY_LIMIT - 1, {}),
        (DELIVERY_LIMIT, {AttemptEnd.FAILED: 1, AttemptEnd.HANDED_BACK: 1}),
    ],
    ids=["not-the-last-delivery", "one-before-the-last", "earlier-attempts-ended-with-a-word"],
)
def test_otherwise_it_is_tried_again(world, media_dir, delivery_count, counted):
    job_id = _crashed_twice(world, media_dir, counted)
    (message,) = _deliver(world, job_id, delivery_count)
    assert message.body["state"] == "done"
    assert world.jobs.get(job_id).state == "done"


def test_an_error_not_known_to_pass_fails_the_job_at_once_with_a_reason(world, media_dir):
    """A bug or a record nobody foresaw: retrying would only hold up the jobs behind it."""
    job_id = world.upload(media.make(media.SAMPLES["mp4 h264+aac"], media_dir))
    handler = JobHandler(settings_module.load(world.environ()), world.database)

    def broken(*args, **kwargs):
        raise KeyError("a field nobody wrote")

    handler.storage.download_video = broken
    delivery = Delivery({"video_fid": str(job_id)}, {}, False, 0, DELIVERY_LIMIT)
    with pytest.raises(PermanentError) as raised:
        handler(delivery, threading.Event())
    job = world.jobs.get(job_id)
    assert (job.state, job.reason, job.attempts) == ("failed", INTERNAL_ERROR, 1)
    (told,) = raised.value.outgoing
    assert (told.body["state"], told.body["reason"]) == ("failed", INTERNAL_ERROR)


def test_a_job_longer_than_max_media_seconds_is_refused_before_converting(world, media_dir):
    """An hour of silent Opus (~1 MB) against a 30 min limit: failed from the probe, with
    a reason its owner reads."""
    job_id = world.submit(media.silent_opus(media_dir, 3600))
    with RunningConsumer(build_consumer(world.environ(MAX_MEDIA_SECONDS="1800"))):
        job = world.wait_final(job_id)
    reason = "the file is 1 h long; this service converts at most 30 min per file"
    assert (job.state, job.reason, job.attempts) == ("failed", reason, 1)
    [told] = world.messages(world.mp3_queue, timeout=5)
    assert (told["state"], told["reason"]) == ("failed", reason)
    assert world.mp3_files(job_id) == []


@pytest.mark.parametrize(
    ("options", "filename", "content_type", "copied"),
    [
        ({"format": "opus", "quality": "96k", "start": "0.5", "end": "2.5"}, "sunset.opus",
         "audio/ogg", False),
        ({"format": "m4a"}, "sunset.m4a", "audio/mp4", True),  # its AAC as it is
    ],
)  # fmt: skip
def test_the_output_is_stored_in_the_format_asked_for_with_tags_and_cover(
    world, media_dir, options, filename, content_type, copied
):
    job_id = world.submit(media.tagged_video(media_dir), "sunset.mp4", options=options)
    with RunningConsumer(build_consumer(world.environ(OUTPUT_RETENTION_SECONDS="3600"))):
        job = world.wait_final(job_id)
    assert (job.state, job.copied, job.cover, job.tags) == ("done", copied, True, media.TAGS)
    assert _kept_for(job) == 3600
    stored = world.mp3s.find({"_id": job.mp3_fid}).next()
    assert (stored.filename, stored.metadata["content_type"]) == (filename, content_type)
    data = io.BytesIO(world.mp3s.open_download_stream(job.mp3_fid).read())
    found = OggOpus(data) if options["format"] == "opus" else MP4(data)
    assert abs(found.info.length - job.duration_seconds) < 0.01
    assert abs(job.duration_seconds - (2.0 if "start" in options else 3.0)) <= 0.06
    [told] = world.messages(world.mp3_queue, timeout=5)
    assert (told["state"], told["format"]) == ("done", options["format"])


def _withdrawn() -> float:
    return REGISTRY.get_sample_value("converter_jobs_withdrawn_total") or 0.0


def _withdraw(world, job_id, how: str) -> None:
    """What the gateway does when the owner cancels or deletes the job."""
    if how == "cancel":
        assert world.jobs.cancel(job_id, "ann@example.com", expires_at=now())
    else:
        assert world.jobs.delete_for_owner(job_id, "ann@example.com")


@pytest.mark.parametrize("how", ["cancel", "delete"])
def test_a_job_withdrawn_while_converting_stops_ffmpeg_and_leaves_nothing(world, media_dir, how):
    """An hour of silence (seconds of ffmpeg): progress shows on the job while it converts;
    cancelled or deleted then, ffmpeg is killed, nothing is stored, nobody is told, and the
    message is acked (not dead-lettered, not back on the queue)."""
    job_id = world.submit(media.silent_opus(media_dir, 3600))
    before = _withdrawn()
    with RunningConsumer(build_consumer(world.environ())):

        def converting():
            job = world.jobs.get(job_id)
            return job if job.progress else None

        job = wait_until(converting, timeout=30)
        assert job.state == "converting" and 0 < job.progress < 100
        assert job.eta_seconds is not None and media.ffmpeg_children()
        _withdraw(world, job_id, how)
        # The issue's bound is 2 s; 5 s leaves room for a busy machine.
        assert wait_until(lambda: not media.ffmpeg_children(), timeout=5)
        assert wait_until(lambda: _withdrawn() == before + 1, timeout=5)
    assert nothing_returns(world.video_queue)
    assert world.messages(f"{world.video_queue}.dlq", timeout=0.5) == []
    assert world.messages(world.mp3_queue, timeout=0.5) == []
    assert world.mp3_files(job_id) == []
    assert world.database[f"{MP3_BUCKET}.chunks"].count_documents({}) == 0
    assert list(world.work_dir.iterdir()) == []
    job = world.jobs.get(job_id)
    assert job is None if how == "delete" else job.state == "cancelled"


@pytest.mark.parametrize("how", ["cancel", "delete"])
def test_a_message_for_a_job_withdrawn_before_it_ran_is_acked_quietly(world, media_dir, how):
    job_id = world.submit(media.make(media.SAMPLES["mp4 h264+aac"], media_dir))
    _withdraw(world, job_id, how)
    before = _withdrawn()
    with RunningConsumer(build_consumer(world.environ())):
        assert wait_until(lambda: _withdrawn() == before + 1, timeout=10)
    assert nothing_returns(world.video_queue)
    assert world.messages(f"{world.video_queue}.dlq", timeout=0.5) == []
    assert world.messages(world.mp3_queue, timeout=0.5) == []
    assert world.videos.find({"_id": job_id}).to_list(), "its video is the gateway's to remove"


def test_the_owners_media_limit_counts_the_part_converted(world, media_dir):
    """A job's own max_media_seconds (its owner's quota) below MAX_MEDIA_SECONDS: an hour
    is refused, a minute of the same hour converts."""
    hour = media.silent_opus(media_dir, 3600)
    refused = world.submit(hour, max_media_seconds=1800)
    trimmed = world.submit(hour, max_media_seconds=1800, options={"start": "60", "end": "120"})
    with RunningConsumer(build_consumer(world.environ())):
        refused_job, trimmed_job = world.wait_final(refused), world.wait_final(trimmed)
    assert refused_job.reason == (
        "the file is 1 h long; this service converts at most 30 min per file"
    )
    assert trimmed_job.state == "done" and abs(trimmed_job.duration_seconds - 60) < 0.1


def test_an_upload_stopped_by_a_cancel_leaves_no_chunk(world, tmp_path):
    """The job watch raises between chunks: the part already written is removed."""
    output = tmp_path / "out.mp3"
    output.write_bytes(b"x" * (3 * 1024 * 1024))  # three chunks
    checks = []

    def check():
        checks.append(1)
        if len(checks) == 2:
            raise Withdrawn

    storage = Storage(world.database)
    with pytest.raises(Withdrawn):
        storage.store_output(
            output,
            output_id=ObjectId(),
            job_id=ObjectId(),
            attempt=1,
            filename="out.mp3",
            content_type="audio/mpeg",
            check=check,
        )
    assert world.database[f"{MP3_BUCKET}.chunks"].count_documents({}) == 0
    assert world.database[f"{MP3_BUCKET}.files"].count_documents({}) == 0


class Withdrawn(Exception):
    """What the job watch raises for a cancelled job (here, from the test)."""
