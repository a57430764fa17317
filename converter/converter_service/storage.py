"""GridFS in and out, a chunk at a time: a 1 GB video never sits in the converter's memory.

Outputs (MP3, M4A, Opus, FLAC, WAV: whatever the job asked for) go into the `mp3s` bucket
(the reference's name, kept), named with the format's extension and carrying its media
type, the job id and the attempt number in their metadata; each output's id is noted on
the job before its first chunk is written. A converter killed while storing an output, or
between storing it and marking the job done, leaves chunks or a whole file behind; the
next attempt deletes both (`delete_earlier_attempts`), so a job never owns two outputs
and GridFS keeps no orphan chunks.

Both copies call `check()` before each chunk (the job watch: it raises when the job was
cancelled); an upload stopped that way, or by any other error, removes what it wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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

    def download_video(
        self, video_id: ObjectId, path: Path, *, check: Callable[[], None] = lambda: None
    ) -> int:
        """Copy the video into `path` chunk by chunk; its size in bytes."""
        try:
            source = self.videos.open_download_stream(video_id)
        except gridfs.errors.NoFile as exc:
            raise VideoMissing(f"no video {video_id} in GridFS") from exc
        size = 0
        with source, path.open("wb") as target:
            while chunk := source.readchunk():
                check()
                target.write(chunk)
                size += len(chunk)
        return size

    def store_output(
        self,
        path: Path,
        *,
        output_id: ObjectId,
        job_id: ObjectId,
        attempt: int,
        filename: str,
        content_type: str,
        check: Callable[[], None] = lambda: None,
    ) -> ObjectId:
        """Upload the output at `path` as `output_id`; nothing of it is left if it fails."""
        metadata = {"job_id": job_id, "attempt": attempt, "content_type": content_type}
        upload = self.mp3s.open_upload_stream_with_id(output_id, filename, metadata=metadata)
        try:
            with path.open("rb") as source:
                while chunk := source.read(CHUNK_SIZE_BYTES):
                    check()
                    upload.write(chunk)
        except BaseException:
            upload.abort()
            raise
        upload.close()
        return output_id

    def delete_earlier_attempts(
        self, job_id: ObjectId, attempt: int, noted: list[ObjectId] = ()
    ) -> int:
        """Delete what earlier, interrupted attempts at this job stored: whole outputs, and the
        chunks of uploads noted on the job that never got their file document; how many."""
        stale = self._database[f"{MP3_BUCKET}.files"].find(
            {"metadata.job_id": job_id, "metadata.attempt": {"$lt": attempt}}, {"_id": 1}
        )
        deleted = 0
        for output_id in {document["_id"] for document in stale} | set(noted):
            # GridFSBucket.delete removes the chunks even when the file document is missing.
            self.delete_output(output_id)
            deleted += 1
        if deleted:
            log.warning(
                "deleted %d output(s) left by an interrupted attempt at job %s", deleted, job_id
            )
        return deleted

    def delete_output(self, output_id: ObjectId) -> None:
        try:
            self.mp3s.delete(output_id)
        except gridfs.errors.NoFile:
            pass

    def delete_video(self, video_id: ObjectId) -> bool:
        """Delete the source video; False if it was already gone (a redelivery)."""
        try:
            self.videos.delete(video_id)
        except gridfs.errors.NoFile:
            return False
        return True
