"""`video.dlq`: every job whose message was dead-lettered ends final, and its owner hears.

The broker dead-letters a `video` message in two ways. The converter rejects it after
failing the job and publishing the owner's "could not convert" message (x-death reason
`rejected`): nothing is left to do. Or the message came back once too often (reason
`delivery_limit`): its last delivery killed its converter (out of memory, kill -9), or
was handed back at the end of a stop grace, and nobody was left to say anything. Before
this reaper, such a job stayed `converting` forever, unmailed.

The reaper runs beside the `video` consumer in every converter process (a second Consumer
on a thread, `run_consumer`) and takes each dead letter:

* a job that is not final is failed (`CRASHED` when an attempt ended without a word, else
  `GAVE_UP`) and its `mp3` message published, so the notifier mails the owner;
* a final job whose owner was not mailed, dead-lettered by the limit (a converter that
  finished but died before its ack) gets its `mp3` message again (the notifier's claim
  keeps that to one mail);
* anything else (already told, no such job, a job its owner cancelled, not a job message)
  is only logged.

Each dead letter is then acked: the job record keeps the reason, and the video of a failed
job is deleted once its owner is told (the notifier does that). A failure known to pass
(MongoDB down) requeues it on `video.dlq`, which has no limit: it waits for MongoDB.
"""

from __future__ import annotations

import logging
import threading

from bson import ObjectId
from pymongo.database import Database

from mp3common.amqp import Delivery, Outgoing, PermanentError
from mp3common.jobs import FAILED, MAILED_STATES, Job, Jobs, now
from mp3common.messages import Mp3Message, VideoMessage

from . import metrics
from .handler import CRASHED, GAVE_UP
from .settings import Settings

log = logging.getLogger(__name__)

REJECTED = "rejected"


class DeadLetterReaper:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.jobs = Jobs(database)

    def __call__(self, delivery: Delivery, stopping: threading.Event) -> list[Outgoing]:
        why = dead_letter_reason(delivery.headers)
        try:
            job_id = VideoMessage.parse(delivery.body).job_id
        except PermanentError as exc:
            log.warning("dead letter (%s) names no job, dropped: %s", why, exc)
            return []
        job = self.jobs.get(job_id)
        if job is None:
            log.warning("dead letter (%s) for job %s, which no longer exists", why, job_id)
            return []
        if not job.finished:
            return self._fail(job_id, job, why)
        if job.state in MAILED_STATES and job.notified_at is None and why != REJECTED:
            log.warning(
                "job %s is %s but its owner was not mailed (dead letter: %s); telling them",
                job_id,
                job.state.value,
                why,
            )
            return [self._mp3_message(job)]
        log.info("dead letter (%s) for job %s, %s: nothing to do", why, job_id, job.state.value)
        return []

    def _fail(self, job_id: ObjectId, job: Job, why: str) -> list[Outgoing]:
        # The attempt that was running when the message was lost never ended with a word.
        silent = job.attempts - job.failed_attempts - job.handed_back
        reason, kind = (CRASHED, "crashed") if silent >= 1 else (GAVE_UP, "gave_up")
        if self.jobs.fail(job_id, reason, expires_at=self.settings.video_expiry(now())):
            metrics.JOBS_FINISHED.labels(FAILED).inc()
            metrics.JOBS_FAILED.labels(kind).inc()
            log.warning(
                "job %s was dead-lettered (%s) while %s after %d attempts: failed, owner told",
                job_id,
                why,
                job.state.value,
                job.attempts,
            )
        failed = self.jobs.get(job_id)
        if failed is None or failed.notified_at is not None:
            return []
        return [self._mp3_message(failed)]

    def _mp3_message(self, job: Job) -> Outgoing:
        return Outgoing(self.settings.mp3_queue, Mp3Message.for_job(job).body())


def dead_letter_reason(headers: dict) -> str:
    """Why the broker dead-lettered the message (`x-death`'s latest reason), or "unknown"."""
    deaths = headers.get("x-death") or []
    if not deaths or not isinstance(deaths[0], dict):
        return "unknown"
    reason = deaths[0].get("reason", "unknown")
    return reason.decode() if isinstance(reason, bytes) else str(reason)
