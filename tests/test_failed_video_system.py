"""A failed job's video is kept for its owner to retry it, then expires (issues 12 and 13),
on the stack `make run` started: a silent video is uploaded with the README's curl, fails,
its owner gets the "could not convert" mail offering the retry, /status shows the mail sent
and when the video goes; the video is still in GridFS. Once its expiry has come the
gateway's sweep (every 5 s on the dev stack) removes it, and a retry is then refused.
"""

from __future__ import annotations

import datetime as dt
import os

import gridfs
import pytest
import requests
from bson import ObjectId
from conftest import GATEWAY_URL
from reference_flow import log_in, make_video, upload, wait_for_mails

from mp3common.jobs import VIDEO_BUCKET
from mp3common.mongo import client
from mp3testing import wait_until

pytestmark = pytest.mark.stack  # drives the stack make run started


def test_a_failed_jobs_video_is_kept_for_a_retry_until_it_expires(new_user, tmp_path):
    address, password = new_user("failed")
    token = log_in(address, password, tmp_path)
    headers = {"Authorization": f"Bearer {token}"}
    fid = upload(token, make_video(tmp_path / "silent.mp4", 2, audio=False))["fid"]
    [mail] = wait_for_mails(address, timeout=60)
    assert mail["Subject"].startswith("We could not convert")
    assert f"/jobs/{fid}/retry" in mail.get_content()
    status = requests.get(
        f"{GATEWAY_URL}/status", params={"fid": fid}, headers=headers, timeout=10
    ).json()
    assert (status["state"], status["reason"]) == ("failed", "the video has no audio track")
    assert status["mail"] == {"state": "sent", "reason": None}
    assert status["expires_at"] and status["expired"] is False

    database = client(os.environ["MONGODB_URI"], app_name="failed-video-tests")[
        os.environ.get("MONGODB_DB", "mp3converter")
    ]
    videos = gridfs.GridFSBucket(database, VIDEO_BUCKET)
    assert videos.find({"_id": ObjectId(fid)}).to_list(), "kept for a retry"

    # Its time has come: the sweep removes the video and marks the job expired.
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    database["jobs"].update_one({"_id": ObjectId(fid)}, {"$set": {"expires_at": past}})
    assert wait_until(lambda: not videos.find({"_id": ObjectId(fid)}).to_list(), timeout=30)
    job = f"{GATEWAY_URL}/jobs/{fid}"
    assert wait_until(lambda: requests.get(job, headers=headers, timeout=10).json()["expired"])
    retry = requests.post(f"{job}/retry", headers=headers, timeout=10)
    assert retry.status_code == 410, retry.text
