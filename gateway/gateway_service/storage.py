"""MongoDB for the gateway: the uploads' and MP3s' GridFS buckets and the job records.

The MongoClient is the process's one (mp3common.mongo), made on first use, so that a
gunicorn worker makes its own after the fork and a MongoDB that is down at start does
not stop the gateway from starting (it answers 503 until MongoDB is back).
"""

from __future__ import annotations

import logging
import threading

from bson import ObjectId
from gridfs import GridFSBucket
from gridfs.errors import NoFile
from pymongo.database import Database
from pymongo.errors import PyMongoError

from mp3common import mongo
from mp3common.jobs import CHUNK_SIZE_BYTES, MP3_BUCKET, VIDEO_BUCKET, Jobs

from . import gridfs_writer
from .settings import Settings

log = logging.getLogger(__name__)


class Storage:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._indexed = False
        self._gridfs_indexed = False

    @property
    def database(self) -> Database:
        client = mongo.client(
            self._settings.mongodb_uri,
            app_name="gateway",
            timeout_ms=self._settings.mongodb_timeout_ms,
        )
        return client[self._settings.mongodb_db]

    @property
    def gridfs_database(self) -> Database:
        """The database, once the uploads' GridFS indexes exist (checked once per process)."""
        database = self.database
        if not self._gridfs_indexed:
            gridfs_writer.ensure_indexes(database, VIDEO_BUCKET)
            self._gridfs_indexed = True
        return database

    @property
    def videos(self) -> GridFSBucket:
        return GridFSBucket(self.database, VIDEO_BUCKET, chunk_size_bytes=CHUNK_SIZE_BYTES)

    @property
    def mp3s(self) -> GridFSBucket:
        return GridFSBucket(self.database, MP3_BUCKET, chunk_size_bytes=CHUNK_SIZE_BYTES)

    @property
    def jobs(self) -> Jobs:
        jobs = Jobs(self.database)
        if not self._indexed:
            with self._lock:
                if not self._indexed:
                    jobs.ensure_indexes()
                    self._indexed = True
        return jobs

    def ping(self) -> None:
        self.database.command("ping")

    def settle_upload(self, fid: ObjectId) -> None:
        """The upload's job is written: its file is no orphan (gridfs_writer.in_progress)."""
        gridfs_writer.in_progress(self.database, VIDEO_BUCKET).delete_one({"_id": fid})

    def discard_upload(self, fid: ObjectId) -> None:
        """Remove an upload's job and file: the undo of an upload that cannot complete."""
        self.jobs.delete(fid)
        _remove(self.videos, fid)
        self.settle_upload(fid)

    def video_kept(self, fid: ObjectId) -> bool:
        return self.database[f"{VIDEO_BUCKET}.files"].find_one({"_id": fid}, {"_id": 1}) is not None

    def remove_video(self, fid: ObjectId) -> None:
        _remove(self.videos, fid)

    def remove_output(self, fid: ObjectId) -> None:
        _remove(self.mp3s, fid)


def _remove(bucket: GridFSBucket, fid: ObjectId) -> None:
    """Remove a GridFS file and its chunks; one already gone, or never finished (chunks
    and no files document), is no error."""
    try:
        bucket.delete(fid)
    except NoFile:
        pass


def discard_quietly(storage: Storage, fid: ObjectId) -> None:
    """discard_upload for error paths: the original error is what the user must hear about."""
    try:
        storage.discard_upload(fid)
    except PyMongoError:
        log.exception("could not remove upload %s; it is an orphan now", fid)
