"""The service as it runs: the shared Consumer on a queue of its own, jobs in a test
database, a real SMTP server; messages are what the converter publishes (`Mp3Message`).
"""

import datetime as dt
import json
import threading
import time

import gridfs
import pytest
from bson import ObjectId
from conftest import (
    MONGODB_URI,
    Mailbox,
    SmtpServer,
    finished_job,
    free_port,
    make_settings,
    publish,
)

from mp3common.amqp import DELIVERY_LIMIT, Consumer
from mp3common.jobs import VIDEO_BUCKET, Jobs, now
from mp3common.messages import Mp3Message
from mp3common.mongo import client
from mp3common.options import parse_options
from mp3testing import (
    RunningConsumer,
    close_connections,
    get_message,
    nothing_returns,
    wait_until,
)
from notification_service import create_consumer
from notification_service.compose import moment_in_words
from notification_service.notify import Notifier
from notification_service.smtp import Sender

pytestmark = pytest.mark.stack  # the shared Consumer on RabbitMQ, jobs in MongoDB


def _consumer(environ, server=None, **changes):
    smtp = server.environ() if server is not None else {}
    return create_consumer(environ | smtp | changes)


def test_a_converted_job_gets_one_mail_with_its_file_id(environ, jobs, smtp, mailbox):
    job = finished_job(jobs, owner="bob@example.com", filename="talk.mp4")
    publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    with RunningConsumer(_consumer(environ, smtp)):
        assert wait_until(lambda: jobs.get(job.id).notified_at)
    [(_from, rcpt_tos, message)] = mailbox.messages
    assert rcpt_tos == ["bob@example.com"]
    assert message["Subject"] == "Your MP3 is ready: talk.mp4"
    body = message.get_content()
    assert f"File id: {job.id}" in body
    assert f'"http://mp3converter.com/download?fid={job.id}" \\\n      -o talk.mp3' in body
    assert nothing_returns(environ["MP3_QUEUE"])  # acked: it did not come back at the stop
    assert nothing_returns(environ["MP3_QUEUE"] + ".dlq", timeout=0)


def test_a_failed_job_gets_a_could_not_convert_mail(environ, jobs, smtp, mailbox):
    job = finished_job(jobs, failed_because="the video has no audio track")
    publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    with RunningConsumer(_consumer(environ, smtp)):
        assert wait_until(lambda: mailbox.messages)
    message = mailbox.messages[0][2]
    assert message["Subject"].startswith("We could not convert")
    assert "Reason:  the video has no audio track" in message.get_content()


def _words(text: str) -> str:
    """`text` with its lines joined: what a sentence says, however it was wrapped."""
    return " ".join(text.split())


def test_a_converted_jobs_mail_says_its_format_options_notes_and_expiry(
    environ, jobs, smtp, mailbox
):
    options, notes = parse_options(
        {"format": "opus", "start": "10", "end": "1:00", "quality": "96k", "normalize": "-16"}
    )
    job = finished_job(
        jobs,
        filename="talk.mp4",
        options=options,
        notes=(*notes, "track: the file has one audio track"),
        expires_at=now() + dt.timedelta(days=7),
    )
    publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    with RunningConsumer(_consumer(environ, smtp)):
        assert wait_until(lambda: jobs.get(job.id).notified_at)
    [(_from, _to, message)] = mailbox.messages
    assert message["Subject"] == "Your audio is ready, converted to Opus: talk.mp4"
    body = message.get_content()
    assert "Options: Opus 96k, 0:10-1:00, normalized to -16 LUFS\n" in body
    assert "Note:    track: the file has one audio track\n" in body
    assert f'"http://mp3converter.com/download?fid={job.id}" \\\n      -o talk.opus\n' in body
    expires = moment_in_words(job.expires_at)
    assert f"It will be deleted on {expires} (in 7 days); download it before then." in _words(body)


def test_a_copied_streams_mail_says_it_was_not_re_encoded(environ, jobs, smtp, mailbox):
    job = finished_job(jobs, copied=True, expires_at=now() + dt.timedelta(hours=5))
    publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    with RunningConsumer(_consumer(environ, smtp)):
        assert wait_until(lambda: mailbox.messages)
    body = mailbox.messages[0][2].get_content()
    assert "Options: MP3 (copied without re-encoding)\n" in body
    assert "-o holiday_clip.mp3\n" in body
    assert "(in 5 hours); download it" in _words(body)


def test_a_failed_job_that_can_be_retried_keeps_its_video_and_the_mail_says_until_when(
    environ, jobs, smtp, mailbox
):
    videos = gridfs.GridFSBucket(jobs.collection.database, VIDEO_BUCKET)
    job = finished_job(
        jobs, failed_because="the converter timed out", expires_at=now() + dt.timedelta(days=2)
    )
    videos.upload_from_stream_with_id(job.id, "clip.mp4", b"video bytes")
    publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    with RunningConsumer(_consumer(environ, smtp)):
        assert wait_until(lambda: jobs.get(job.id).notified_at)
    [(_from, _to, message)] = mailbox.messages
    body = message.get_content()
    kept = moment_in_words(job.expires_at)
    assert f"Your video is kept until {kept} (in 2 days), then deleted." in _words(body)
    assert (
        '    curl -X POST -H "Authorization: Bearer <JWT_TOKEN>" \\\n'
        f'      "http://mp3converter.com/jobs/{job.id}/retry"\n'
    ) in body
    assert videos.find({"_id": job.id}).to_list()  # kept for the retry, until it expires


@pytest.mark.parametrize("since", ["retried", "retried and cancelled"])
def test_the_message_of_a_job_its_owner_retried_since_is_acked_without_a_mail(
    environ, jobs, smtp, mailbox, caplog, since
):
    """A cancelled job is finished yet never mailed: the notifier once waited for a mail
    it took for another notifier's, for ever, holding up every mail behind it."""
    job = finished_job(
        jobs, failed_because="the converter timed out", expires_at=now() + dt.timedelta(days=1)
    )
    message = Mp3Message.for_job(job).body()
    assert jobs.retry(job.id, job.owner) is not None
    if since == "retried and cancelled":
        jobs.cancel(job.id, job.owner, expires_at=now() + dt.timedelta(days=1))
        expected = f"job {job.id} was cancelled by its owner; no mail"
    else:
        expected = f"job {job.id} was retried since (now queued)"
    publish(environ["MP3_QUEUE"], message)
    with RunningConsumer(_consumer(environ, smtp)):
        assert wait_until(lambda: expected in caplog.text)
    assert nothing_returns(environ["MP3_QUEUE"])  # acked
    assert nothing_returns(environ["MP3_QUEUE"] + ".dlq", timeout=0)
    assert mailbox.messages == []
    assert jobs.get(job.id).notified_at is None


def test_a_4xx_answer_is_retried_then_the_mail_goes(environ, jobs, certificate):
    box = Mailbox(answers=["451 4.7.1 Greylisted, try later"] * 2)
    job = finished_job(jobs)
    with SmtpServer(box, tls=certificate) as server:
        publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
        with RunningConsumer(_consumer(environ, server)):
            assert wait_until(lambda: jobs.get(job.id).notified_at)
    assert box.rcpt_attempts == 3 and len(box.messages) == 1
    assert jobs.get(job.id).notify_error is None  # cleared once it went
    assert get_message(environ["MP3_QUEUE"] + ".dlq", timeout=0.5) is None


def test_a_5xx_answer_is_dead_lettered_at_once_with_the_reason(environ, jobs, certificate):
    box = Mailbox(answers=["550 5.1.1 The email account does not exist"] * 10)
    job = finished_job(jobs, owner="nobody@example.com")
    with SmtpServer(box, tls=certificate) as server:
        publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
        with RunningConsumer(_consumer(environ, server)) as consumer:
            dead = get_message(environ["MP3_QUEUE"] + ".dlq")
            assert consumer.ready.is_set()  # still consuming, not crashed
    assert dead is not None and json.loads(dead[0])["video_fid"] == str(job.id)
    assert box.rcpt_attempts == 1
    stored = jobs.get(job.id)
    assert stored.notify_error.startswith("recipient refused: 550 5.1.1")
    assert stored.notified_at is None


def test_smtp_down_is_retried_a_bounded_number_of_times_then_dead_lettered(environ, jobs, caplog):
    job = finished_job(jobs)
    down = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(free_port()), "SMTP_SECURITY": "none"}
    publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    with RunningConsumer(_consumer(environ, **down, SMTP_SEND_ATTEMPTS="2")) as consumer:
        dead = get_message(environ["MP3_QUEUE"] + ".dlq", timeout=30)
        assert consumer.ready.is_set()
    assert dead is not None, "never dead-lettered"
    # Every delivery (RabbitMQ 3.10: limit + 1 of them) tries twice, each failure followed by
    # a wait that doubles from 0.1 s up to 0.4 s: bounded, and never a busy loop.
    prefix = f"sending the mail for job {job.id} failed"
    waits = [
        record.getMessage().rsplit(" in ", 1)[1]
        for record in caplog.records
        if record.getMessage().startswith(prefix)
    ]
    attempts = (DELIVERY_LIMIT + 1) * 2
    assert waits == [f"{min(0.1 * 2**n, 0.4):.1f} s" for n in range(attempts)]
    assert "unreachable" in jobs.get(job.id).notify_error


def test_a_duplicated_message_sends_one_mail(environ, jobs, smtp, mailbox, caplog):
    job = finished_job(jobs)
    publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    with RunningConsumer(_consumer(environ, smtp)):
        assert wait_until(lambda: f"job {job.id} was already notified" in caplog.text)
    assert nothing_returns(environ["MP3_QUEUE"])  # both handled and acked
    assert len(mailbox.messages) == 1


def test_two_notifiers_with_the_same_job_at_once_send_one_mail(environ, jobs, certificate, caplog):
    """Two replicas each get a copy while the first mail is still in flight."""
    box = Mailbox()
    job = finished_job(jobs)
    with SmtpServer(box, tls=certificate) as server:
        box.before_data = lambda: time.sleep(1.0)
        first = _consumer(environ, server)
        second = _consumer(environ, server)
        with RunningConsumer(first), RunningConsumer(second):
            publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
            publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
            # The second waits for the first's mail, then finds the job notified.
            assert wait_until(
                lambda: f"job {job.id} was already notified" in caplog.text, timeout=20
            )
    assert nothing_returns(environ["MP3_QUEUE"])  # both handled and acked
    assert len(box.messages) == 1
    assert f"another notifier is mailing job {job.id}" in caplog.text


def test_a_message_redelivered_after_its_mail_went_sends_no_second_one(environ, jobs, certificate):
    """The consumer's connection dies while the mail is in flight, so the ack is lost and
    the broker redelivers the message: the job says it was sent, nothing more goes."""
    box = Mailbox()
    job = finished_job(jobs)
    name = f"notify-test-{job.id}"
    in_flight, connection_gone = threading.Event(), threading.Event()
    redeliveries, handled = [], []

    def hold_mail():
        in_flight.set()
        connection_gone.wait(10)

    box.before_data = hold_mail
    with SmtpServer(box, tls=certificate) as server:
        settings = make_settings(environ | server.environ())
        database = client(MONGODB_URI, app_name="notification-tests")[settings.mongodb_db]
        notifier = Notifier(settings, Jobs(database), Sender(settings))

        def handler(delivery, stopping):
            redeliveries.append(delivery.redelivered)
            notifier(delivery, stopping)
            handled.append(delivery.redelivered)

        consumer = Consumer(environ["RABBITMQ_URL"], environ["MP3_QUEUE"], handler, name=name)
        publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
        with RunningConsumer(consumer):
            assert in_flight.wait(10)
            assert wait_until(lambda: close_connections(name)), f"no connection named {name}"
            connection_gone.set()
            assert wait_until(lambda: True in handled, timeout=20), redeliveries
    assert nothing_returns(environ["MP3_QUEUE"])  # the redelivery was acked
    assert redeliveries == [False, True]
    assert len(box.messages) == 1
    assert jobs.get(job.id).notified_at is not None


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"mp3_fid": "x"}, "no video_fid"),
        ({"video_fid": "not-an-id"}, "malformed video_fid"),
        ({"video_fid": 12345}, "video_fid not a string"),
        ({"video_fid": str(ObjectId()), "state": "converting"}, "not a finished job's message"),
    ],
)
def test_a_message_naming_no_job_goes_to_the_dlq(environ, smtp, mailbox, body, why):
    publish(environ["MP3_QUEUE"], body)
    with RunningConsumer(_consumer(environ, smtp)):
        assert get_message(environ["MP3_QUEUE"] + ".dlq") is not None, why
    assert mailbox.messages == []


def test_an_unfinished_job_is_dead_lettered_not_mailed(environ, jobs, smtp, mailbox):
    job_id = ObjectId()
    jobs.create(
        job_id, owner="a@example.com", filename="x.mp4", size=1, content_type=None, request_id=None
    )
    publish(environ["MP3_QUEUE"], {"video_fid": str(job_id), "state": "done"})
    with RunningConsumer(_consumer(environ, smtp)):
        assert get_message(environ["MP3_QUEUE"] + ".dlq") is not None
    assert mailbox.messages == []


def test_a_deleted_job_is_acked_without_a_mail(environ, smtp, mailbox, caplog):
    fid = ObjectId()
    publish(environ["MP3_QUEUE"], {"video_fid": str(fid), "state": "done"})
    with RunningConsumer(_consumer(environ, smtp)):
        assert wait_until(lambda: f"job {fid} no longer exists" in caplog.text)
    assert nothing_returns(environ["MP3_QUEUE"])  # acked
    assert mailbox.messages == []
    assert nothing_returns(environ["MP3_QUEUE"] + ".dlq", timeout=0)
