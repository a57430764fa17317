"""GridFS in and out, a chunk at a time: a 1 GB video never sits in the converter's memory.

MP3s carry the job id and attempt number in their metadata, and each MP3's id is noted on
the job before its first chunk is written. A converter killed while storing an MP3, or
between storing it and marking the job done, leaves chunks or a whole MP3 behind; the
next attempt deletes both (`delete_earlier_attempts`), so a job never owns two MP3s and
GridFS keeps no orphan chunks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gridfs
from bson import ObjectId
from pymongo import ASCENDING
from pymongo.database import Database

from mp3common.jobs import CHUNK_SIZE_BYTES, MP3_BUCKET, VIDEO_BUCKET

log = logging.getLogger(__name__)


class VideoMissing(Exception):
    """The job's video is not in GridFS (deleted, or never fully stored)."""


class Storage:
    def __init__(self, database: Database) -> None:
        self._database = database
        self.videos = gridfs.GridFSBucket(database, VIDEO_BUCKET, chunk_size_bytes=CHUNK_SIZE_BYTES)
        self.mp3s = gridfs.GridFSBucket(database, MP3_BUCKET, chunk_size_bytes=CHUNK_SIZE_BYTES)

    def ensure_indexes(self) -> None:
        self._database[f"{MP3_BUCKET}.files"].create_index([("metadata.job_id", ASCENDING)])

    def download_video(self, video_id: ObjectId, path: Path) -> int:
        """Copy the video into `path` chunk by chunk; its size in bytes."""
        try:
            source = self.videos.open_download_stream(video_id)
        except gridfs.errors.NoFile as exc:
            raise VideoMissing(f"no video {video_id} in GridFS") from exc
        size = 0
        with source, path.open("wb") as target:
            while chunk := source.readchunk():
                target.write(chunk)
                size += len(chunk)
        return size

    def store_mp3(
        self, path: Path, *, mp3_id: ObjectId, job_id: ObjectId, attempt: int, filename: str
    ) -> ObjectId:
        with path.open("rb") as source:
            self.mp3s.upload_from_stream_with_id(
                mp3_id,
                filename,
                source,
                metadata={"job_id": job_id, "attempt": attempt, "content_type": "audio/mpeg"},
            )
        return mp3_id

    def delete_earlier_attempts(
        self, job_id: ObjectId, attempt: int, noted: list[ObjectId] = ()
    ) -> int:
        """Delete what earlier, interrupted attempts at this job stored: whole MP3s, and the
        chunks of uploads noted on the job that never got their file document; how many."""
        stale = self._database[f"{MP3_BUCKET}.files"].find(
            {"metadata.job_id": job_id, "metadata.attempt": {"$lt": attempt}}, {"_id": 1}
        )
        deleted = 0
        for mp3_id in {document["_id"] for document in stale} | set(noted):
            # GridFSBucket.delete removes the chunks even when the file document is missing.
            self.delete_mp3(mp3_id)
            deleted += 1
        if deleted:
            log.warning(
                "deleted %d MP3(s) left by an interrupted attempt at job %s", deleted, job_id
            )
        return deleted

    def delete_mp3(self, mp3_id: ObjectId) -> None:
        try:
            self.mp3s.delete(mp3_id)
        except gridfs.errors.NoFile:
            pass

    def delete_video(self, video_id: ObjectId) -> bool:
        """Delete the source video; False if it was already gone (a redelivery)."""
        try:
            self.videos.delete(video_id)
        except gridfs.errors.NoFile:
            return False
        return True
