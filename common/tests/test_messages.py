"""The two messages' shapes: what one service publishes for a job, the next one reads back,
and a body that does not fit is a PermanentError (dead-lettered at once), never a retry."""

import json

import pytest
from bson import ObjectId

from mp3common.amqp import PermanentError
from mp3common.jobs import Job
from mp3common.messages import Mp3Message, VideoMessage

JOB_ID = ObjectId("65a1b2c3d4e5f60718293a4b")
MP3_ID = ObjectId("65a1b2c3d4e5f60718293a4c")


def _job(**fields) -> Job:
    document = {
        "_id": JOB_ID,
        "owner": "ann@example.com",
        "state": "queued",
        "filename": "holiday.mp4",
        "attempts": 0,
    }
    return Job.from_document(document | fields)


DONE = _job(state="done", mp3_fid=MP3_ID, mp3_size=500, attempts=1)
FAILED = _job(state="failed", reason="the video has no audio track", attempts=1)


def _on_the_wire(body: dict) -> dict:
    """What the consumer decodes: the body as JSON, sent and read back."""
    return json.loads(json.dumps(body))


def test_a_video_message_is_the_references_shape():
    body = VideoMessage.for_job(_job()).body()
    assert body == {
        "video_fid": str(JOB_ID),
        "mp3_fid": None,
        "username": "ann@example.com",
        "filename": "holiday.mp4",
        "format": "mp3",  # added after the reference: new fields only add
    }


def test_a_message_carries_the_format_asked_for():
    job = _job(options={"format": "opus"})
    assert VideoMessage.for_job(job).body()["format"] == "opus"
    done = _job(state="done", mp3_fid=MP3_ID, options={"format": "flac"})
    assert Mp3Message.for_job(done).body()["format"] == "flac"


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (DONE, {"state": "done", "mp3_fid": str(MP3_ID), "reason": None}),
        (FAILED, {"state": "failed", "mp3_fid": None, "reason": "the video has no audio track"}),
    ],
    ids=["done", "failed"],
)
def test_an_mp3_message_says_how_the_job_ended(job, expected):
    body = Mp3Message.for_job(job).body()
    assert body == {
        "video_fid": str(JOB_ID),
        "username": "ann@example.com",
        "filename": "holiday.mp4",
        "format": "mp3",
        **expected,
    }


def test_the_converter_reads_what_the_gateway_publishes():
    message = VideoMessage.parse(_on_the_wire(VideoMessage.for_job(_job()).body()))
    assert message == VideoMessage.for_job(_job())
    assert message.job_id == JOB_ID


@pytest.mark.parametrize("job", [DONE, FAILED], ids=["done", "failed"])
def test_the_notifier_reads_what_the_converter_publishes(job):
    message = Mp3Message.parse(_on_the_wire(Mp3Message.for_job(job).body()))
    assert message == Mp3Message.for_job(job)
    assert message.job_id == JOB_ID


def test_fields_a_message_does_not_know_are_ignored():
    """A newer publisher may add some; an older consumer must still read the message."""
    body = VideoMessage.for_job(_job()).body() | {"priority": "high"}
    assert VideoMessage.parse(body) == VideoMessage.for_job(_job())


def test_the_reference_gateways_minimal_message_still_reads():
    """Only `video_fid` names the job; the rest the consumer reads from the job itself."""
    assert VideoMessage.parse({"video_fid": str(JOB_ID)}).job_id == JOB_ID


VIDEO_BODY = VideoMessage.for_job(_job()).body()
MP3_BODY = Mp3Message.for_job(DONE).body()


def _without(body: dict, field: str) -> dict:
    return {key: value for key, value in body.items() if key != field}


@pytest.mark.parametrize(
    ("kind", "body", "names"),
    [
        (VideoMessage, _without(VIDEO_BODY, "video_fid"), "video_fid"),
        (VideoMessage, VIDEO_BODY | {"video_fid": "not-an-id"}, "video_fid"),
        (VideoMessage, VIDEO_BODY | {"video_fid": "z" * 24}, "video_fid"),
        (VideoMessage, VIDEO_BODY | {"video_fid": str(JOB_ID) + "00"}, "video_fid"),
        (VideoMessage, VIDEO_BODY | {"video_fid": str(JOB_ID) + "\n"}, "video_fid"),
        (VideoMessage, VIDEO_BODY | {"video_fid": 12345}, "video_fid"),
        (VideoMessage, VIDEO_BODY | {"video_fid": None}, "video_fid"),
        (VideoMessage, {}, "video_fid"),
        (Mp3Message, _without(MP3_BODY, "video_fid"), "video_fid"),
        (Mp3Message, MP3_BODY | {"video_fid": "../etc/passwd"}, "video_fid"),
        (Mp3Message, MP3_BODY | {"state": "converting"}, "state"),
        (Mp3Message, MP3_BODY | {"state": "queued"}, "state"),
        (Mp3Message, _without(MP3_BODY, "state"), "state"),
        (Mp3Message, MP3_BODY | {"mp3_fid": "not-an-id"}, "mp3_fid"),
    ],
    ids=[
        "video: no video_fid",
        "video: video_fid not hex",
        "video: video_fid 24 non-hex",
        "video: video_fid too long",
        "video: video_fid with a newline",
        "video: video_fid a number",
        "video: video_fid null",
        "video: empty",
        "mp3: no video_fid",
        "mp3: video_fid a path",
        "mp3: state converting",
        "mp3: state queued",
        "mp3: no state",
        "mp3: mp3_fid not hex",
    ],
)
def test_a_body_that_does_not_fit_is_a_permanent_error_naming_the_field(kind, body, names):
    with pytest.raises(PermanentError, match=f"not a {kind.__name__}: .*{names}") as raised:
        kind.parse(body)
    assert raised.value.outgoing == []  # dead-lettered with nothing published first
