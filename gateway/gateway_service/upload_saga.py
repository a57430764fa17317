"""Taking an upload: store the file, write its job, queue it; undo what was done if a step fails.

The steps, and the undo of each (a saga, with the jobs collection as its outbox):

1. The file streams into GridFS (`uploads.store_upload`) and its options are judged; a
   refused or broken upload removes its own chunks (UploadRefused, or the client's
   disconnect, propagates).
2. The job is counted against its owner's jobs-per-hour quota, then written (`queued`,
   with its options). If the quota refuses it or MongoDB fails here, the file is removed.
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
from collections.abc import Callable
from typing import BinaryIO

from bson import ObjectId
from limits.errors import StorageError
from pymongo.errors import PyMongoError
from werkzeug.exceptions import ClientDisconnected

from mp3common.amqp import PublishError, QueueMismatch
from mp3common.jobs import VIDEO_BUCKET, Job

from . import uploads
from .errors import QueueUnavailable, UploadRefused
from .publishing import JobPublisher, record_published
from .storage import Storage, discard_quietly

log = logging.getLogger(__name__)


def accept_upload(
    body: BinaryIO,
    boundary: bytes,
    *,
    owner: str,
    limits: uploads.UploadLimits,
    ffmpeg: str,
    request_id: str | None,
    storage: Storage,
    publisher: JobPublisher,
    admit: Callable[[], None] = lambda: None,
) -> Job:
    """Store the multipart `body`'s one file for `owner` and queue its conversion with the
    options of its other fields. `admit` is asked once the file is stored, before its job
    is written (the jobs-per-hour quota counts it then); it raises to refuse.

    Returns the queued job. Raises UploadRefused (nothing kept), QueueUnavailable (nothing
    kept), PyMongoError (nothing kept), or ClientDisconnected (nothing kept).
    """
    job_id, started = ObjectId(), time.monotonic()
    stored = _store(body, boundary, job_id, owner, limits, ffmpeg, storage, started)
    return queue_stored_upload(
        stored,
        owner=owner,
        request_id=request_id,
        storage=storage,
        publisher=publisher,
        started=started,
        admit=admit,
        max_media_seconds=limits.max_media_seconds,
    )


def queue_stored_upload(
    stored: uploads.StoredUpload,
    *,
    owner: str,
    request_id: str | None,
    storage: Storage,
    publisher: JobPublisher,
    started: float | None = None,
    admit: Callable[[], None] = lambda: None,
    max_media_seconds: float | None = None,
) -> Job:
    """Steps 2-4 for a file already whole in GridFS (a multipart upload's, or a resumable
    upload's after its last PATCH, tus.py): admit it, write its job (with its options and
    the converter's `max_media_seconds`), queue it, record the confirm.

    Raises UploadRefused (`admit`'s), QueueUnavailable or PyMongoError with the job and
    the file removed.
    """
    job_id = stored.fid
    started = time.monotonic() if started is None else started
    try:
        admit()
        job = storage.jobs.create(
            job_id,
            owner=owner,
            filename=stored.filename,
            size=stored.size,
            content_type=stored.content_type,
            request_id=request_id,
            options=stored.options,
            notes=stored.notes,
            max_media_seconds=max_media_seconds,
        )
    except (UploadRefused, PyMongoError, StorageError):
        discard_quietly(storage, job_id)
        raise
    try:
        storage.settle_upload(job_id)
    except PyMongoError:
        log.warning("upload %s: its in-progress mark stays (the orphan sweep drops it)", job_id)
    _queue(job, storage, publisher)
    seconds = time.monotonic() - started
    log.info(
        "upload %s stored and queued: %d bytes, %s, %s, %.1f s (%.0f MB/s)",
        job_id,
        stored.size,
        stored.content_type,
        stored.options.summary(),
        seconds,
        stored.size / 1e6 / max(seconds, 1e-6),
    )
    return job


def _store(
    body: BinaryIO,
    boundary: bytes,
    job_id: ObjectId,
    owner: str,
    limits: uploads.UploadLimits,
    ffmpeg: str,
    storage: Storage,
    started: float,
) -> uploads.StoredUpload:
    """Step 1: the file into GridFS; a refused or broken upload has removed its chunks."""
    try:
        return uploads.store_upload(
            body,
            boundary,
            fid=job_id,
            database=storage.gridfs_database,
            bucket=VIDEO_BUCKET,
            owner=owner,
            limits=limits,
            ffmpeg=ffmpeg,
        )
    except ClientDisconnected:
        log.info("client went away mid-upload; the partial file %s was removed", job_id)
        raise
    except UploadRefused as exc:
        log.info("upload refused (%s) after %.1f s", exc.code, time.monotonic() - started)
        raise


def _queue(job: Job, storage: Storage, publisher: JobPublisher) -> None:
    """Step 3 and 4: publish the job's message and record the confirm; undo the upload if
    the broker does not confirm."""
    try:
        publisher.publish_job(job)
    except QueueMismatch as exc:
        # mp3common said what is wrong and how to fix it, once; not again per upload.
        log.error("job %s not queued, upload undone: queue %r is misconfigured", job.id, exc.queue)
        discard_quietly(storage, job.id)
        raise QueueUnavailable(
            "queue_unavailable",
            "The conversion queue is misconfigured on the server (an operator must migrate "
            "it, see the gateway's log); the upload was not kept.",
        ) from None
    except PublishError as exc:
        log.error("job %s not queued, upload undone: %s", job.id, exc)
        discard_quietly(storage, job.id)
        raise QueueUnavailable(
            "queue_unavailable",
            "The upload could not be queued for conversion and was not kept; try again.",
        ) from None
    record_published(storage.jobs, job.id)
