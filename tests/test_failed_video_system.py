"""A failed job's video is removed once its owner was told (issue 12, part 7), on the
stack `make run` started: a silent video is uploaded with the README's curl, fails, its
owner gets the "could not convert" mail, /status shows the mail sent, and the video is
gone from GridFS."""

from __future__ import annotations

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


def test_a_failed_jobs_video_is_deleted_once_its_owner_is_told(new_user, tmp_path):
    address, password = new_user("failed")
    token = log_in(address, password, tmp_path)
    fid = upload(token, make_video(tmp_path / "silent.mp4", 2, audio=False))["fid"]
    [mail] = wait_for_mails(address, timeout=60)
    assert mail["Subject"].startswith("We could not convert")
    database = client(os.environ["MONGODB_URI"], app_name="failed-video-tests")[
        os.environ.get("MONGODB_DB", "mp3converter")
    ]
    videos = gridfs.GridFSBucket(database, VIDEO_BUCKET)
    assert wait_until(lambda: not videos.find({"_id": ObjectId(fid)}).to_list(), timeout=10)
    status = requests.get(
        f"{GATEWAY_URL}/status",
        params={"fid": fid},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    assert (status["state"], status["reason"]) == ("failed", "the video has no audio track")
    assert status["mail"] == {"state": "sent", "reason": None}
