"""Taking an upload: store the file, write its job, queue it; undo what was done if a step fails.

The steps, and the undo of each (a saga, with the jobs collection as its outbox):

1. The file streams into GridFS (`uploads.store_upload`); a refused or broken upload
   removes its own chunks (UploadRefused, or the client's disconnect, propagates).
2. The job is written (`queued`). If MongoDB fails here, the file is removed.
3. Its `video` message is published and confirmed. If the broker refuses or is down, the
   job and the file are removed and QueueUnavailable is raised: nothing is kept, so the
   user can simply send it again.
4. The confirm is recorded (`published_at`). If that write fails, the job stays queued and
   unconfirmed, and the outbox relay (`outbox.py`) publishes it once more later; the
   converter keeps one result per job.

A gateway process killed between 2 and 4 is the same case as a failed 4. One killed
during 1 or between 1 and 2 leaves a file (or its first chunks) that no job owns: the file
is marked in progress from its first chunk until its job is written (`settle_upload`),
and the orphan sweep (`orphans.py`) removes such a file once its mark is stale.
"""

from __future__ import annotations

import logging
import time
from typing import BinaryIO

from bson import ObjectId
from pymongo.errors import PyMongoError
from werkzeug.exceptions import ClientDisconnected

from mp3common.amqp import PublishError, QueueMismatch
from mp3common.jobs import VIDEO_BUCKET, Job

from . import uploads
from .errors import QueueUnavailable, UploadRefused
from .publishing import JobPublisher
from .storage import Storage, discard_quietly

log = logging.getLogger(__name__)


def accept_upload(
    body: BinaryIO,
    boundary: bytes,
    *,
    owner: str,
    max_bytes: int,
    ffmpeg: str,
    request_id: str | None,
    storage: Storage,
    publisher: JobPublisher,
) -> Job:
    """Store the multipart `body`'s one file for `owner` and queue its conversion.

    Returns the queued job. Raises UploadRefused (nothing kept), QueueUnavailable (nothing
    kept), PyMongoError (nothing kept), or ClientDisconnected (nothing kept).
    """
    job_id, started = ObjectId(), time.monotonic()
    try:
        stored = uploads.store_upload(
            body,
            boundary,
            fid=job_id,
            database=storage.gridfs_database,
            bucket=VIDEO_BUCKET,
            owner=owner,
            max_bytes=max_bytes,
            ffmpeg=ffmpeg,
        )
    except ClientDisconnected:
        log.info("client went away mid-upload; the partial file %s was removed", job_id)
        raise
    except UploadRefused as exc:
        log.info("upload refused (%s) after %.1f s", exc.code, time.monotonic() - started)
        raise
    return queue_stored_upload(
        stored,
        owner=owner,
        request_id=request_id,
        storage=storage,
        publisher=publisher,
        started=started,
    )


def queue_stored_upload(
    stored: uploads.StoredUpload,
    *,
    owner: str,
    request_id: str | None,
    storage: Storage,
    publisher: JobPublisher,
    started: float | None = None,
) -> Job:
    """Steps 2-4 for a file already whole in GridFS (a multipart upload's, or a resumable
    upload's after its last PATCH, tus.py): write its job, queue it, record the confirm.

    Raises QueueUnavailable or PyMongoError with the job and the file removed.
    """
    job_id = stored.fid
    started = time.monotonic() if started is None else started
    try:
        job = storage.jobs.create(
            job_id,
            owner=owner,
            filename=stored.filename,
            size=stored.size,
            content_type=stored.content_type,
            request_id=request_id,
        )
    except PyMongoError:
        discard_quietly(storage, job_id)
        raise
    try:
        storage.settle_upload(job_id)
    except PyMongoError:
        log.warning("upload %s: its in-progress mark stays (the orphan sweep drops it)", job_id)
    try:
        publisher.publish_job(job)
    except QueueMismatch as exc:
        # mp3common said what is wrong and how to fix it, once; not again per upload.
        log.error("job %s not queued, upload undone: queue %r is misconfigured", job_id, exc.queue)
        discard_quietly(storage, job_id)
        raise QueueUnavailable(
            "queue_unavailable",
            "The conversion queue is misconfigured on the server (an operator must migrate "
            "it, see the gateway's log); the upload was not kept.",
        ) from None
    except PublishError as exc:
        log.error("job %s not queued, upload undone: %s", job_id, exc)
        discard_quietly(storage, job_id)
        raise QueueUnavailable(
            "queue_unavailable",
            "The upload could not be queued for conversion and was not kept; try again.",
        ) from None
    try:
        storage.jobs.mark_published(job_id)
    except PyMongoError:
        log.warning("job %s queued, but its confirm was not recorded (the relay will)", job_id)
    seconds = time.monotonic() - started
    log.info(
        "upload %s stored and queued: %d bytes, %s, %.1f s (%.0f MB/s)",
        job_id,
        stored.size,
        stored.content_type,
        seconds,
        stored.size / 1e6 / max(seconds, 1e-6),
    )
    return job
