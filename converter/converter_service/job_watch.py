"""The converter's line to the job it works on: progress out, cancellation in.

While an attempt works on a job, every step calls `JobWatch.report` (the download and the
upload per chunk, the probe and ffmpeg four times a second): at most once a second the
latest progress (per cent 0-100, seconds to go) is written to the job with
`Jobs.note_progress`, whose answer is also the check that the job is still this
attempt's. When it is not (its owner cancelled or deleted it, or a later attempt took it
over), `report` raises `Cancelled`: the step under way stops (ffmpeg is killed, an upload
is aborted) and the handler acks the message without a word to anyone.

A phase that has no progress to tell (download, probe, cover, upload) reports None: the
job keeps its last progress, and the check still runs once a second.
"""

from __future__ import annotations

import time

from bson import ObjectId

from mp3common.jobs import CANCELLED, Job, Jobs

#: How often the job is written to (and checked), in seconds.
INTERVAL_SECONDS = 1.0


class Cancelled(Exception):
    """The job is no longer this attempt's: cancelled or deleted by its owner, or taken
    over by a later attempt. Nothing is to be stored or sent for it."""


class JobWatch:
    def __init__(
        self,
        jobs: Jobs,
        job_id: ObjectId,
        attempt: int,
        *,
        interval_seconds: float = INTERVAL_SECONDS,
    ) -> None:
        self.jobs = jobs
        self.job_id = job_id
        self.attempt = attempt
        self.interval_seconds = interval_seconds
        self._latest: tuple[float | None, float | None] = (None, None)
        self._checked_at: float | None = None

    def report(self, per_cent: float | None = None, eta_seconds: float | None = None) -> None:
        """Note how far the attempt is (None: nothing new); raise Cancelled when the job is
        found to be no longer this attempt's (looked up at most once an interval)."""
        if per_cent is not None:
            self._latest = (per_cent, eta_seconds)
        moment = time.monotonic()
        if self._checked_at is not None and moment - self._checked_at < self.interval_seconds:
            return
        self._checked_at = moment
        progress, eta = self._latest
        if not self.jobs.note_progress(
            self.job_id, self.attempt, progress=progress, eta_seconds=eta
        ):
            raise self.lost()

    def lost(self) -> Cancelled:
        """The Cancelled that says what became of the job."""
        job = self.jobs.get(self.job_id)
        if gone := withdrawn(self.job_id, job):
            return gone
        return Cancelled(
            f"job {self.job_id} is no longer attempt {self.attempt}'s "
            f"({job.state.value}, attempt {job.attempts})"
        )


def withdrawn(job_id: ObjectId, job: Job | None) -> Cancelled | None:
    """Cancelled when its owner withdrew the job (deleted it: `job` None, or cancelled it)."""
    if job is None:
        return Cancelled(f"job {job_id} was deleted by its owner")
    if job.state == CANCELLED:
        return Cancelled(f"job {job_id} was cancelled by its owner")
    return None
