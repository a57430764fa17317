"""The expiry sweep: what a finished job keeps is removed once its time has come.

A done job keeps its output for OUTPUT_RETENTION_SECONDS, a failed or cancelled one its
video for FAILED_VIDEO_RETENTION_SECONDS (for a retry); the converter and the gateway
write that time on the job (`expires_at`). Every gateway process sweeps now and then
(EXPIRY_SWEEP_INTERVAL_SECONDS): it claims an expired job with one atomic update
(Jobs.claim_expired: two replicas never both take it; a sweeper that dies frees it when
its lease runs out), removes the job's files from GridFS and marks it expired. The record
stays, so that its owner is told what became of it (`expired` in /status, 410 on
/download and on a retry).
"""

from __future__ import annotations

import logging

from .lifecycle import remove_files
from .periodic import PeriodicTask
from .publishing import connection_name
from .storage import Storage

log = logging.getLogger(__name__)

#: How long a sweeper holds a claimed job: far longer than removing its files takes.
LEASE_SECONDS = 600.0


def remove_expired(storage: Storage, claimant: str, *, lease_seconds: float = LEASE_SECONDS) -> int:
    """Remove the files of every job whose expiry has come and mark it expired; how many
    this `claimant` removed (another sweeper's claims are left to it)."""
    removed = 0
    while (job := storage.jobs.claim_expired(claimant, lease_seconds=lease_seconds)) is not None:
        remove_files(storage, job)
        if storage.jobs.mark_expired(job.id, claimant):
            removed += 1
            log.info("job %s expired (%s): its files are removed", job.id, job.state.value)
    return removed


class ExpirySweep(PeriodicTask):
    """`remove_expired` every `interval_seconds`, as this process (its name is the claim's)."""

    def __init__(self, storage: Storage, *, interval_seconds: float) -> None:
        super().__init__("expiry-sweep", interval_seconds=interval_seconds)
        self._storage = storage

    def run_once(self) -> None:
        remove_expired(self._storage, connection_name())
