"""One bad message never stalls anyone (issue 12, part 1), on the stack `make run` started.

Jobs are written straight into MongoDB, past the gateway's filename cleaning, as a bug or
an older version could leave them, and announced on `mp3` as the converter would: a name
with U+2028 (LINE SEPARATOR), which once made composing the mail raise after the claim,
stalling every other user's mail for 652 s, and a record no service would write. Another
user's mail, announced after them, must go out; the bad record is dead-lettered on its
first delivery (what held the other mail up was its redelivery, after each claim lease),
with its reason on the job; /status shows the mail's state. The other mail's delay is
logged here and measured by `make faults`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import uuid

import pytest
import requests
from bson import ObjectId
from conftest import GATEWAY_URL, login
from reference_flow import RABBITMQ_URL, ROOT, dead_lettered_fids, mails_to, wait_for_mails

from mp3common.amqp import Publisher
from mp3common.jobs import Job
from mp3common.logs import request_id
from mp3common.messages import Mp3Message
from mp3common.mongo import client
from mp3testing import wait_until

pytestmark = pytest.mark.stack  # drives the stack make run started

NOTIFIER_LOG = ROOT / "var" / "log" / "notification.log"


def _notifier_says(trace: str) -> list[str]:
    """What the notifier logged while it handled the message of request id `trace`."""
    lines = [json.loads(line) for line in NOTIFIER_LOG.read_text().splitlines() if line[:1] == "{"]
    return [line["message"] for line in lines if line.get("request_id") == trace]


@pytest.fixture
def jobs_collection():
    database = client(os.environ["MONGODB_URI"], app_name="poison-tests")[
        os.environ.get("MONGODB_DB", "mp3converter")
    ]
    written: list[ObjectId] = []
    yield database["jobs"], written
    database["jobs"].delete_many({"_id": {"$in": written}})


def _done_job(collection, written, owner: str, filename: str, **extra) -> ObjectId:
    job_id = ObjectId()
    moment = dt.datetime.now(dt.UTC)
    collection.insert_one(
        {
            "_id": job_id,
            "owner": owner,
            "filename": filename,
            "size": 1000,
            "state": "done",
            "attempts": 1,
            "mp3_fid": ObjectId(),
            "mp3_size": 500,
            "duration_seconds": 3.0,
            "created_at": moment,
            "updated_at": moment,
            "finished_at": moment,
        }
        | extra
    )
    written.append(job_id)
    return job_id


def test_a_poison_job_never_delays_another_users_mail(jobs_collection, new_user):
    collection, written = jobs_collection
    tag = uuid.uuid4().hex[:8]
    poisoner = f"poison-{tag}@example.com"
    other, password = new_user("other")
    separator = _done_job(
        collection, written, poisoner, f"report\u2028Bcc: victim-{tag}@example.com\u200b.mp4"
    )
    corrupt = _done_job(collection, written, poisoner, "x.mp4", audio_track="aac")
    good = _done_job(collection, written, other, "talk.mp4")
    publisher = Publisher(RABBITMQ_URL, ["mp3"], name="poison-tests")
    trace = f"poison-{tag}"
    try:
        started = time.monotonic()
        for job_id in (corrupt, separator, good):
            body = Mp3Message(video_fid=str(job_id), username="x", state="done").body()
            token = request_id.set(trace if job_id == corrupt else None)
            try:
                publisher.publish("mp3", body)
            finally:
                request_id.reset(token)
        wait_for_mails(other, timeout=60)
        delay = time.monotonic() - started
    finally:
        publisher.close()
    logging.getLogger(__name__).info("the other user's mail came after %.2f s", delay)
    # Delivered once and dead-lettered: never handed back to wait for another try.
    said = _notifier_says(trace)
    assert any(message.startswith("dead-lettering the message") for message in said), said
    assert not any("requeueing" in message or "handing" in message for message in said), said

    # The bad record: dead-lettered at once, its reason recorded, its claim released.
    assert wait_until(lambda: collection.find_one({"_id": corrupt}).get("notify_failed_at"))
    record = collection.find_one({"_id": corrupt})
    assert record["notify_error"].startswith("the mail could not be made (TypeError")
    assert record.get("notify_claim") is None and record.get("notified_at") is None
    assert str(corrupt) in dead_lettered_fids()

    # The U+2028 name is no poison: mailed, with one clean Subject line and no Bcc.
    [mail] = wait_for_mails(poisoner, timeout=30)
    assert mail["Subject"] == "Your MP3 is ready: report Bcc: victim-" + tag + "@example.com .mp4"
    assert mail["Bcc"] is None and not mails_to(f"victim-{tag}@example.com")
    assert collection.find_one({"_id": separator})["notified_at"] is not None

    # /status tells the other user their mail went.
    token = login(GATEWAY_URL, other, password)
    status = requests.get(
        f"{GATEWAY_URL}/status",
        params={"fid": str(good)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert status.status_code == 200, status.text
    assert status.json()["mail"] == {"state": "sent", "reason": None}
    assert Job.from_document(collection.find_one({"_id": good})).notified_at is not None
