"""What an owner does with a job once uploaded: delete it, cancel it, retry it.

The views find the owner's job first (anyone else's is a 404 before anything here runs);
these act on it and raise JobConflict (409) or JobGone (410) when the job is not in a
state the action applies to. A job being converted is stopped by its converter, which
sees the job cancelled or gone the next time it reports progress (within a second or two).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bson import ObjectId

from mp3common.amqp import PublishError
from mp3common.jobs import RETRYABLE_STATES, Job, iso, now
from mp3common.settings import RetentionSettings

from .errors import GatewayError, JobConflict, JobGone
from .publishing import JobPublisher, record_published
from .storage import Storage

log = logging.getLogger(__name__)


def outputs(job: Job) -> set[ObjectId]:
    """Every output the job has or a conversion of it began to store."""
    return {fid for fid in (job.mp3_fid, *job.mp3_uploads) if fid is not None}


def remove_files(storage: Storage, job: Job) -> None:
    """Remove the job's video and its outputs from GridFS (what is gone already is no error)."""
    storage.remove_video(job.id)
    for fid in outputs(job):
        storage.remove_output(fid)


def delete_job(storage: Storage, job: Job) -> None:
    """Remove the owner's job: its files, then its record. Files first, so that a delete
    that fails half-way can be asked again; an output a converter began meanwhile is in
    the record as it was deleted, and goes too."""
    remove_files(storage, job)
    gone = storage.jobs.delete_for_owner(job.id, job.owner)
    if gone is not None and outputs(gone) - outputs(job):
        remove_files(storage, gone)
    log.info("job %s deleted by its owner (it was %s)", job.id, job.state.value)


def cancel_job(storage: Storage, job: Job, retention: RetentionSettings) -> Job:
    """Cancel a queued or converting job; its video is kept for a retry until it expires."""
    cancelled = storage.jobs.cancel(job.id, job.owner, expires_at=retention.video_expiry(now()))
    if cancelled is None:
        current = storage.jobs.get(job.id) or job
        raise JobConflict(
            "already_finished",
            f"The job is {current.state.value} already; only a queued or converting job can "
            "be cancelled.",
            state=current.state.value,
        )
    log.info("job %s cancelled by its owner (it was %s)", job.id, job.state.value)
    return cancelled


def retry_job(
    storage: Storage, publisher: JobPublisher, job: Job, *, admit: Callable[[], None]
) -> Job:
    """Queue a failed or cancelled job again, same fid, and publish it as an upload is.

    `admit()` counts the retry as a job against its owner's quota (quotas.count_job,
    raising when the hour's are spent), once the job is known to be retryable: a retry
    converts and mails again, as an upload does. Should the broker not confirm, the job
    stays queued and unconfirmed, and the outbox relay publishes it once it has waited its
    age since the retry (`Jobs.claim_unpublished`).
    """
    refusal = _retry_refusal(storage, job)
    if refusal is not None:
        raise refusal
    admit()
    queued = storage.jobs.retry(job.id, job.owner)
    if queued is None:  # the job changed since it was read
        current = storage.jobs.get(job.id) or job
        raise _retry_refusal(storage, current) or _changed(current)
    try:
        publisher.publish_job(queued)
    except PublishError as exc:
        log.warning("retried job %s not queued yet (%s); the outbox relay will", job.id, exc)
        return queued
    record_published(storage.jobs, queued.id)
    log.info("job %s retried by its owner (retry %d)", job.id, queued.retries)
    return queued


def expired(job: Job) -> bool:
    """What the job keeps (its output, or its video) has expired, or its time has come."""
    return job.expired_at is not None or (job.expires_at is not None and job.expires_at <= now())


def _retry_refusal(storage: Storage, job: Job) -> GatewayError | None:
    if job.state not in RETRYABLE_STATES:
        return JobConflict(
            "not_retryable",
            f"The job is {job.state.value}; only a failed or cancelled job can be retried.",
            state=job.state.value,
        )
    if expired(job) or not storage.video_kept(job.id):
        return JobGone(
            "video_expired",
            "The video of this job is no longer kept"
            + (f" (it expired on {iso(job.expires_at)})" if job.expires_at else "")
            + "; upload it again.",
            expired_at=iso(job.expired_at or job.expires_at),
        )
    return None


def _changed(job: Job) -> JobConflict:
    return JobConflict(
        "not_retryable",
        "The job changed while it was being retried; ask for it again.",
        state=job.state.value,
    )
