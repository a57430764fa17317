"""Work a gateway process does now and then in its background: the outbox relay and the
orphan sweep (outbox.py), the expiry sweep (expiry.py)."""

from __future__ import annotations

import logging
import threading

from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)


class PeriodicTask(threading.Thread):
    """Runs `run_once()` every `interval_seconds` until `stopped` is set. A round that
    MongoDB fails is skipped with a warning; the next one tries again."""

    def __init__(self, name: str, *, interval_seconds: float) -> None:
        super().__init__(name=name, daemon=True)
        self._interval = interval_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self._interval):
            try:
                self.run_once()
            except PyMongoError as exc:
                log.warning("%s skipped a round: MongoDB unavailable (%s)", self.name, exc)

    def run_once(self) -> None:
        raise NotImplementedError
