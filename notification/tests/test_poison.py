"""One bad message never stalls anyone (issue 12): a mail that can never go is dead-lettered
at once, its claim released and its reason on the job, while the next user's mail goes.
And an address the server cannot take is a recorded failure with the exact reason.

The notifier as it runs (the shared Consumer, prefetch 1) on a queue of its own, jobs in a
test database, a real SMTP server (aiosmtpd)."""

import logging
import time

import gridfs
import pytest
from conftest import Mailbox, SmtpServer, finished_job, publish

from mp3common.jobs import VIDEO_BUCKET, public_view
from mp3common.messages import Mp3Message
from mp3testing import RunningConsumer, get_message, nothing_returns, wait_until
from notification_service import create_consumer, notify
from notification_service.compose import compose as real_compose

pytestmark = pytest.mark.stack

# What the issue measured: the next user's mail waited 652 s behind one poison message,
# delivered again and again, each time after the stack's 130 s claim lease (with this
# test's 28 s lease, the code before the fix kept it 141.9 s). What makes it wait is the
# redelivery, so that is what the test asserts: the poison is delivered once. The delay
# itself is logged here and measured by `make faults`.


def _header_code_before_the_fix(job, **kwargs):
    """The mail header code as it was: a U+2028 in the name reached the Subject, and
    composing raised (after the claim was taken) a ValueError nobody foresaw."""
    if "\u2028" in (job.filename or ""):
        raise ValueError("Header values may not contain linefeed or carriage return characters")
    return real_compose(job, **kwargs)


def _poison(jobs, database, kind):
    if kind == "corrupt record":
        # Written straight into MongoDB, as no service would: the job cannot even be read.
        job = finished_job(jobs, owner="mallory@example.com")
        database["jobs"].update_one({"_id": job.id}, {"$set": {"audio_track": "aac"}})
        return job
    owner = "not an address" if kind == "owner no address" else "mallory@example.com"
    return finished_job(jobs, owner=owner, filename="evil\u2028name.mp4")


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("header code raising", "the mail could not be made (ValueError: Header values may"),
        ("owner no address", "the owner 'not an address' is not an email address"),
        ("corrupt record", "the mail could not be made (TypeError"),
    ],
)
def test_a_poison_message_is_dead_lettered_at_once_and_the_next_mail_goes(
    environ, jobs, smtp, mailbox, monkeypatch, kind, reason
):
    if kind == "header code raising":
        monkeypatch.setattr(notify, "compose", _header_code_before_the_fix)
    deliveries = []  # (video_fid, delivery_count) of every message the notifier is handed
    handle = notify.Notifier.__call__

    def counted(self, delivery, stopping):
        deliveries.append((delivery.body.get("video_fid"), delivery.delivery_count))
        return handle(self, delivery, stopping)

    monkeypatch.setattr(notify.Notifier, "__call__", counted)
    database = jobs.collection.database
    poison = _poison(jobs, database, kind)
    other = finished_job(jobs, owner="bob@example.com", filename="talk.mp4")
    queue = environ["MP3_QUEUE"]
    with RunningConsumer(create_consumer(environ | smtp.environ())):
        published = time.monotonic()
        publish(queue, Mp3Message(video_fid=str(poison.id), state="done").body())
        publish(queue, Mp3Message.for_job(other).body())
        assert wait_until(lambda: jobs.get(other.id).notified_at, timeout=30)
        delay = time.monotonic() - published
    logging.getLogger(__name__).info("%s: the other user's mail came after %.2f s", kind, delay)
    assert [count for fid, count in deliveries if fid == str(poison.id)] == [0]  # once
    [(_, rcpt_tos, _)] = mailbox.messages
    assert rcpt_tos == ["bob@example.com"]
    dead = get_message(queue + ".dlq", timeout=5)
    assert dead is not None and str(poison.id) in dead[0].decode()  # at once, not retried
    document = database["jobs"].find_one({"_id": poison.id})
    assert document["notify_error"].startswith(reason)
    assert document["notify_failed_at"] is not None
    assert document.get("notify_claim") is None  # released: a replay need not wait a lease
    assert nothing_returns(queue)
    if kind != "corrupt record":
        assert public_view(jobs.get(poison.id))["mail"]["state"] == "failed"


def test_a_line_separator_in_the_name_is_mailed_with_clean_headers(environ, jobs, smtp, mailbox):
    job = finished_job(jobs, filename="evil\u2028Bcc: all@example.com\u2029.mp4")
    publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    with RunningConsumer(create_consumer(environ | smtp.environ())):
        assert wait_until(lambda: jobs.get(job.id).notified_at)
    [(_, rcpt_tos, message)] = mailbox.messages
    assert rcpt_tos == ["alice@example.com"]
    assert message["Subject"] == "Your MP3 is ready: evil Bcc: all@example.com .mp4"
    assert message["Bcc"] is None
    assert public_view(jobs.get(job.id))["mail"] == {"state": "sent", "reason": None}


def test_an_internationalised_domain_goes_out_as_idna(environ, jobs, smtp, mailbox):
    job = finished_job(jobs, owner="someone@exämple.com")
    publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    with RunningConsumer(create_consumer(environ | smtp.environ())):
        assert wait_until(lambda: jobs.get(job.id).notified_at)
    [(_, rcpt_tos, message)] = mailbox.messages
    assert rcpt_tos == ["someone@xn--exmple-cua.com"]  # the envelope
    assert message["To"] == "someone@xn--exmple-cua.com"  # and the header


@pytest.mark.parametrize("smtputf8", [False, True])
def test_a_non_ascii_local_part_needs_smtputf8_and_says_so(environ, jobs, smtputf8):
    job = finished_job(jobs, owner="jörg@exämple.com")
    mailbox = Mailbox()
    with SmtpServer(mailbox, smtputf8=smtputf8) as server:
        publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
        with RunningConsumer(create_consumer(environ | server.environ())):
            assert wait_until(
                lambda: jobs.get(job.id).notified_at or jobs.get(job.id).notify_failed_at
            )
    mail = public_view(jobs.get(job.id))["mail"]
    if smtputf8:
        assert mail == {"state": "sent", "reason": None}
        [(_, rcpt_tos, _)] = mailbox.messages
        assert rcpt_tos == ["jörg@xn--exmple-cua.com"]
        return
    assert mail["state"] == "failed"
    assert mail["reason"] == (
        "the address has a non-ASCII local part (before the @), and the mail server does "
        "not support SMTPUTF8, which such an address needs: jörg@xn--exmple-cua.com"
    )
    assert mailbox.messages == []
    assert get_message(environ["MP3_QUEUE"] + ".dlq", timeout=5) is not None


def test_a_failed_jobs_video_is_deleted_once_its_owner_is_told(environ, jobs, smtp, mailbox):
    database = jobs.collection.database
    videos = gridfs.GridFSBucket(database, VIDEO_BUCKET)
    failed = finished_job(jobs, failed_because="the video has no audio track")
    done = finished_job(jobs)
    for job in (failed, done):
        videos.upload_from_stream_with_id(job.id, "clip.mp4", b"video bytes")
        publish(environ["MP3_QUEUE"], Mp3Message.for_job(job).body())
    with RunningConsumer(create_consumer(environ | smtp.environ())):
        assert wait_until(lambda: all(jobs.get(j.id).notified_at for j in (failed, done)))
    assert not videos.find({"_id": failed.id}).to_list()  # told: nothing reads it again
    assert videos.find({"_id": done.id}).to_list()  # the converter's to delete, not ours
