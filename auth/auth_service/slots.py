"""How many argon2 computations one process runs at once: its bound on login memory.

Each verify holds its hash's argon2 memory (19 MiB with today's parameters) for as long
as it runs; gunicorn's threads alone would let every thread verify at once. A login
reserves its memory here first, in slots of today's cost: a hash from before with a
larger cost (argon2-cffi's 64 MiB default) takes as many slots as it needs, at most all
of them, so that it runs alone. So one process never holds more argon2 memory than
max(slots x 19 MiB, the largest old hash). A login that finds no room within the wait is
refused (503 `busy`, Retry-After) instead of queueing for ever behind a flood.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Busy(Exception):
    """No room for another argon2 computation within the wait."""


class MemorySlots:
    def __init__(self, slots: int, slot_kib: int) -> None:
        self.slots = slots
        self.slot_kib = slot_kib
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
        wanted = self.needed(memory_kib)
        with self._changed:
            if not self._changed.wait_for(lambda: self._free >= wanted, timeout_seconds):
                raise Busy
            self._free -= wanted
        try:
            yield
        finally:
            with self._changed:
                self._free += wanted
                self._changed.notify_all()
