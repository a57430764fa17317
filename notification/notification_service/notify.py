"""The handler for one `mp3` message: at most one mail per job, retried with backoff.

How "one mail per job" holds:

1. Claim the job (`Jobs.claim_notification`): only a finished, not yet notified job whose
   claim is free or expired can be claimed, so two copies of one message handled at once
   (two replicas, or a redelivery racing its original) send one mail; the other waits for
   the claim to end and then finds the job notified.
2. Send, then record it (`Jobs.mark_notified`), then the Consumer acks.

What is left is the window between the SMTP server's "250 accepted" and the record: a
crash (or a lost reply to DATA, which SMTP cannot tell from a lost mail) there sends the
mail again once the message is redelivered and the claim's lease has run out. Both copies
carry the same Message-ID, which mail systems use to show one. A failure to *record* the
sent mail is logged and the message still acked: the mail went, and that is the job.

Failures, by the one rule of `mp3common.transient`: only a failure known to pass (SMTP
unreachable, timed out or 4xx; MongoDB unreachable) is retried: a few attempts with
exponential backoff inside this delivery, then an exception, so the Consumer requeues it;
the queue's delivery limit bounds the total, then dead-letters it. Backoff grows across
deliveries too (by delivery count). Anything else (a 5xx answer, an address no server
takes, a mail that cannot be made, a job record nobody foresaw) fails the mail for good:
the claim is released, the reason recorded on the job (`notify_error`, `notify_failed_at`:
/status shows it), and the message dead-lettered at once, so it never holds up the mails
behind it.

Once the owner of a failed job was told (or the mail failed for good: /status tells it),
its video is deleted from GridFS, unless the job has an `expires_at`: then the video is
kept until then so that its owner can retry the job (the mail says so), and the expiry
sweep removes it. A job from before retries has none, and nothing will read its video again.

A message can outlive what it announced: its owner may have retried the failed job since
(it is queued or converting again, and its end will have a message of its own) or then
cancelled it (a cancelled job gets no mail). Such a message is acked without a mail.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from email.message import EmailMessage

import gridfs
from bson import ObjectId
from pymongo.errors import PyMongoError

from mp3common.amqp import Delivery, HandBack, PermanentError
from mp3common.jobs import CANCELLED, FAILED, VIDEO_BUCKET, Job, Jobs
from mp3common.messages import Mp3Message
from mp3common.transient import transient

from . import metrics
from .compose import InvalidAddress, compose
from .settings import Settings
from .smtp import PermanentSendError, Sender, TransientSendError

log = logging.getLogger(__name__)

CLAIM_POLL_SECONDS = 0.5


class Stopping(HandBack):
    """The consumer is shutting down; the message goes back to the queue (not an error)."""


class Notifier:
    """Called by the shared Consumer for each `mp3` message (see the module docstring)."""

    def __init__(self, settings: Settings, jobs: Jobs, sender: Sender) -> None:
        self._settings = settings
        self._jobs = jobs
        self._sender = sender

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based, across deliveries)."""
        s = self._settings
        return min(s.retry_backoff_seconds * 2**attempt, s.retry_max_backoff_seconds)

    def __call__(self, delivery: Delivery, stopping: threading.Event) -> None:
        job_id = Mp3Message.parse(delivery.body).job_id
        try:
            self._notify(job_id, delivery, stopping)
        except PyMongoError as exc:
            if not transient(exc):
                raise
            # MongoDB is unreachable: wait before the requeue, so that a short outage does
            # not use up the delivery limit in seconds.
            delay = self.backoff(delivery.delivery_count)
            log.warning("job store unavailable (%r); retrying in %.1f s", exc, delay)
            if stopping.wait(delay):
                raise Stopping("stopping; the message goes back to the queue") from exc
            raise

    def _notify(self, job_id: ObjectId, delivery: Delivery, stopping: threading.Event) -> None:
        claimant = uuid.uuid4().hex
        try:
            self._notify_claimed(job_id, claimant, delivery, stopping)
        except (PermanentError, HandBack, TransientSendError):
            raise  # already recorded where it happened
        except Exception as exc:
            if transient(exc):
                # The next delivery must not wait out this one's lease.
                self._release_quietly(job_id, claimant)
                raise
            reason = (
                str(exc)
                if isinstance(exc, InvalidAddress)
                else f"the mail could not be made ({type(exc).__name__}: {exc})"
            )
            log.error(
                "the mail for job %s failed for good: %s",
                job_id,
                reason,
                exc_info=not isinstance(exc, InvalidAddress),  # a traceback only for surprises
            )
            self._jobs.release_notification(job_id, claimant, error=reason, final=True)
            raise PermanentError(f"mail for job {job_id} failed for good: {reason}") from exc

    def _release_quietly(self, job_id: ObjectId, claimant: str) -> None:
        try:
            self._jobs.release_notification(job_id, claimant)
        except PyMongoError:
            log.warning("could not release the claim on job %s (its lease will end)", job_id)

    def _notify_claimed(
        self, job_id: ObjectId, claimant: str, delivery: Delivery, stopping: threading.Event
    ) -> None:
        attempts = self._settings.send_attempts
        for attempt in range(attempts):
            job = self._claim(job_id, claimant, stopping)
            if job is None:
                return
            message = compose(
                job, sender=self._settings.sender, public_url=self._settings.public_url
            )
            try:
                self._send(message)
            except PermanentSendError as exc:
                self._jobs.release_notification(job_id, claimant, error=str(exc), final=True)
                self._forget_video(job)
                raise PermanentError(f"mail for job {job_id} refused for good: {exc}") from exc
            except TransientSendError as exc:
                self._jobs.release_notification(job_id, claimant, error=str(exc))
                delay = self.backoff(delivery.delivery_count * attempts + attempt)
                last = attempt + 1 == attempts
                log.warning(
                    "sending the mail for job %s failed (%s); %s in %.1f s",
                    job_id,
                    exc,
                    "handing the message back" if last else f"attempt {attempt + 2}",
                    delay,
                )
                if stopping.wait(delay):
                    raise Stopping("stopping; the message goes back to the queue") from exc
                if last:
                    raise TransientSendError(
                        f"mail for job {job_id} not sent in {attempts} attempts: {exc}"
                    ) from exc
                continue
            self._record_sent(job_id, job)
            self._forget_video(job)
            return

    def _send(self, message: EmailMessage) -> None:
        """One SMTP attempt, counted and timed."""
        started = time.perf_counter()
        try:
            self._sender.send(message)
        except PermanentSendError:
            metrics.MAILS_FAILED.labels("permanent").inc()
            raise
        except TransientSendError:
            metrics.MAILS_FAILED.labels("retry").inc()
            raise
        finally:
            metrics.SEND_SECONDS.observe(time.perf_counter() - started)
        metrics.MAILS_SENT.inc()

    def _claim(self, job_id: ObjectId, claimant: str, stopping: threading.Event) -> Job | None:
        """The claimed job, or None when there is nothing to send (gone or already mailed)."""
        waited = False
        while True:
            job = self._jobs.claim_notification(
                job_id, claimant, lease_seconds=self._settings.claim_lease_seconds
            )
            if job is not None:
                return job
            job = self._jobs.get(job_id)
            if job is None:
                log.warning("job %s no longer exists (deleted?); no mail to send", job_id)
                return None
            if job.notified_at is not None:
                log.info("job %s was already notified; not sending again", job_id)
                return None
            if job.state == CANCELLED:
                log.info("job %s was cancelled by its owner; no mail", job_id)
                return None
            if job.retries and not job.finished:
                log.info(
                    "job %s was retried since (now %s); its end will have a message of its own",
                    job_id,
                    job.state,
                )
                return None
            if not job.finished:
                raise PermanentError(f"job {job_id} is {job.state.value!r}, not finished; no mail")
            if not waited:
                log.info("another notifier is mailing job %s; waiting for it", job_id)
                waited = True
            if stopping.wait(CLAIM_POLL_SECONDS):
                raise Stopping("stopping; the message goes back to the queue")

    def _forget_video(self, job: Job) -> None:
        """A failed job's video, its owner told: nothing reads it again. Best effort.

        Not while it can be retried (`expires_at`): the expiry sweep removes it then."""
        if job.state != FAILED or job.expires_at is not None:
            return
        try:
            gridfs.GridFSBucket(self._jobs.collection.database, VIDEO_BUCKET).delete(job.id)
        except gridfs.NoFile:
            return
        except PyMongoError:
            log.warning("could not delete the video of failed job %s", job.id, exc_info=True)
            return
        log.info("deleted the video of failed job %s", job.id)

    def _record_sent(self, job_id: ObjectId, job: Job) -> None:
        try:
            if not self._jobs.mark_notified(job_id):
                log.warning("job %s was marked notified by someone else too", job_id)
        except PyMongoError:
            log.exception(
                "mail for job %s sent, but recording it failed; a copy of its message "
                "would send it again",
                job_id,
            )
        log.info("mailed the owner of job %s that it is %s", job_id, job.state)
