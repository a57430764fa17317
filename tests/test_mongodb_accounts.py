"""Each service's MongoDB account on the dev stack's MongoDB: only what its role grants.

mongoeco, the stand-in, keeps a user's roles but enforces none; `make run` starts it with
the cluster's roles (gateway/manifests/mongodb-init.js) enforced by dev/mongo_server.py,
and the services log in as their own accounts (the passwords are var/dev.env's). Against
a real MongoDB (MONGODB_URI set for `make run`) these accounts are not made: skipped.
"""

from __future__ import annotations

import os

import gridfs
import pytest
from bson import ObjectId
from pymongo import MongoClient
from pymongo.errors import OperationFailure

pytestmark = pytest.mark.stack  # the dev stack's MongoDB stand-in

DATABASE = os.environ.get("MONGODB_DB", "mp3converter")
UNAUTHORIZED = 13


def account(service: str):
    password = os.environ[f"MONGODB_{service.upper()}_PASSWORD"]
    uri = f"mongodb://{service}:{password}@127.0.0.1:27017/{DATABASE}?authSource={DATABASE}"
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client[DATABASE].command("ping")
    except OperationFailure as exc:
        if exc.code == 18:  # AuthenticationFailed: a MongoDB of the user's, not the stand-in
            pytest.skip("the services' accounts exist only in the stand-in `make run` starts")
        raise
    yield client[DATABASE]
    client.close()


@pytest.fixture
def converter():
    yield from account("converter")


@pytest.fixture
def notification():
    yield from account("notification")


@pytest.fixture
def anonymous():
    """The tests' own connection: no account, served as by a mongod without --auth."""
    client = MongoClient(os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017"))
    yield client[DATABASE]
    client.close()


def refused(action) -> str:
    with pytest.raises(OperationFailure) as caught:
        action()
    assert caught.value.code == UNAUTHORIZED, caught.value
    return str(caught.value)


def test_the_converter_reads_a_video_and_writes_an_mp3(converter, anonymous):
    video = gridfs.GridFSBucket(anonymous, "videos").upload_from_stream("v.mp4", b"video" * 100)
    try:
        assert gridfs.GridFSBucket(converter, "videos").open_download_stream(video).read()
        mp3 = gridfs.GridFSBucket(converter, "mp3s").upload_from_stream("a.mp3", b"mp3" * 100)
        gridfs.GridFSBucket(converter, "mp3s").delete(mp3)
        converter["jobs"].find_one_and_update({"_id": ObjectId()}, {"$set": {"state": "x"}})
    finally:
        gridfs.GridFSBucket(converter, "videos").delete(video)  # its right: after a conversion


@pytest.mark.parametrize(
    ("what", "action"),
    [
        ("another collection", lambda db: db["login_limit_counters"].find_one()),
        ("the uploads in progress", lambda db: db["videos.uploading"].find_one()),
        ("new jobs", lambda db: db["jobs"].insert_one({"owner": "x"})),
        ("removing jobs", lambda db: db["jobs"].delete_one({"_id": ObjectId()})),
        (
            "writing videos",
            lambda db: gridfs.GridFSBucket(db, "videos").upload_from_stream("v", b"x"),
        ),
        ("dropping", lambda db: db["jobs"].drop()),
    ],
)
def test_the_converter_may_not_touch(converter, what, action):
    message = refused(lambda: action(converter))
    assert "as converter" in message


def test_the_notification_service_may_not_read_videos_or_mp3s(notification):
    refused(lambda: notification["videos.chunks"].find_one())
    refused(lambda: notification["mp3s.files"].find_one())
    notification["jobs"].find_one()  # its own
