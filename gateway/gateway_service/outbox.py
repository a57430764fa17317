"""The outbox relay: jobs stored but never queued are queued after all.

The jobs collection is the upload's transactional outbox: an upload writes its job, then
publishes its `video` message and records the broker's confirm (`published_at`). A gateway
worker killed between the two leaves a `queued` job that no message names: the file is
stored and the user has a fid, but nothing would ever convert it. Each gateway process
relays such jobs now and then; claiming a job is one atomic update, so several processes
never publish the same job twice (and the converter keeps one result per job if a lost
confirm makes one message two).
"""

from __future__ import annotations

import datetime as dt
import logging

from mp3common.amqp import PublishError
from mp3common.jobs import Jobs, now

from .orphans import remove_abandoned_uploads
from .periodic import PeriodicTask
from .publishing import JobPublisher
from .storage import Storage

log = logging.getLogger(__name__)


def relay_unpublished(jobs: Jobs, publisher: JobPublisher, *, older_than_seconds: float) -> int:
    """Publish every job unpublished for longer than `older_than_seconds`; how many."""
    created_before = now() - dt.timedelta(seconds=older_than_seconds)
    published = 0
    while (job := jobs.claim_unpublished(created_before)) is not None:
        try:
            publisher.publish_job(job)
        except PublishError as exc:
            jobs.unmark_published(job.id)
            log.warning("unpublished job %s still not queued (%s); next round", job.id, exc)
            break
        published += 1
        log.warning("queued job %s: its upload stopped before queueing it", job.id)
    return published


class OutboxRelay(PeriodicTask):
    """Every `interval_seconds`, in the background of a process: `relay_unpublished`, and
    its sibling, the orphan sweep (`orphans.remove_abandoned_uploads`) for uploads whose
    worker died before their job was written (None: no sweep)."""

    def __init__(
        self,
        storage: Storage,
        publisher: JobPublisher,
        *,
        interval_seconds: float,
        older_than_seconds: float,
        orphans_older_than_seconds: float | None = None,
    ) -> None:
        super().__init__("outbox-relay", interval_seconds=interval_seconds)
        self._storage = storage
        self._publisher = publisher
        self._older_than = older_than_seconds
        self._orphans_older_than = orphans_older_than_seconds

    def run_once(self) -> None:
        relay_unpublished(self._storage.jobs, self._publisher, older_than_seconds=self._older_than)
        if self._orphans_older_than is not None:
            remove_abandoned_uploads(
                self._storage.database, older_than_seconds=self._orphans_older_than
            )
