"""How many argon2 computations one process runs at once: its bound on login memory.

Each verify holds its hash's argon2 memory (19 MiB with today's parameters) for as long
as it runs; gunicorn's threads alone would let every thread verify at once. A login
reserves its memory here first, in slots of today's cost: a hash from before with a
larger cost (argon2-cffi's 64 MiB default) takes as many slots as it needs, at most all
of them, so that it runs alone in its process, and it also takes a lock the workers of
one gunicorn share (a file in /tmp, flock), so that only one such verify runs in the
whole pod. So the pod never holds more argon2 memory than
max(workers x slots x 19 MiB, 64 MiB + (workers - 1) x slots x 19 MiB). A login that
finds no room within the wait is refused (503 `busy`, Retry-After) instead of queueing
for ever behind a flood.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Busy(Exception):
    """No room for another argon2 computation within the wait."""


class MemorySlots:
    def __init__(self, slots: int, slot_kib: int, shared_lock_path: str | None = None) -> None:
        self.slots = slots
        self.slot_kib = slot_kib
        #: The file whose lock the processes of one server share for oversized verifies.
        self.shared_lock_path = shared_lock_path
        self._free = slots
        self._changed = threading.Condition()

    def needed(self, memory_kib: int) -> int:
        return min(self.slots, max(1, math.ceil(memory_kib / self.slot_kib)))

    @property
    def in_use(self) -> int:
        with self._changed:
            return self.slots - self._free

    @contextmanager
    def held(self, memory_kib: int, timeout_seconds: float) -> Iterator[None]:
        """Hold room for `memory_kib` of argon2 memory meanwhile; Busy if none frees in time."""
        deadline = time.monotonic() + timeout_seconds
        wanted = self.needed(memory_kib)
        with self._changed:
            if not self._changed.wait_for(lambda: self._free >= wanted, timeout_seconds):
                raise Busy
            self._free -= wanted
        try:
            if memory_kib > self.slots * self.slot_kib and self.shared_lock_path:
                with _exclusive(self.shared_lock_path, deadline):
                    yield
            else:
                yield
        finally:
            with self._changed:
                self._free += wanted
                self._changed.notify_all()


@contextmanager
def _exclusive(path: str, deadline: float) -> Iterator[None]:
    """An exclusive flock on `path` until the block ends; Busy if not had by `deadline`.
    Without the file (no writable /tmp), nothing is shared: the process bound still holds."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as exc:
        log.warning("argon2: no lock shared between workers (%s)", exc)
        fd = None
    if fd is None:
        yield
        return
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Busy from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
