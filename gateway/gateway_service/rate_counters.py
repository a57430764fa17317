"""`limits`' moving windows kept in the gateway's MongoDB, so every replica counts the same.

Used by the login limits (login_limits.py) and the jobs-per-hour quota (quotas.py), each in
collections of its own (`<prefix>_counters`, `<prefix>_windows`, emptied by TTL indexes).
"""

from __future__ import annotations

import atexit
import logging

from limits.storage import MongoDBStorage
from limits.strategies import MovingWindowRateLimiter

from .settings import Settings

log = logging.getLogger(__name__)


class SharedStorage(MongoDBStorage):
    """limits' MongoDB storage, closed when the process exits rather than when collected.

    limits' own `__del__` reaches for its client to close it, creating one if none was
    made yet; at interpreter exit (under gevent, too) that fails with a traceback on
    stderr, which is no log line. Here an existing client is closed at exit, once.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        atexit.register(self.close)

    def close(self) -> None:
        client, self._storage = self._storage, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - exiting anyway; say so in a log line
                log.debug("closing a rate counters' MongoDB client failed", exc_info=True)

    def __del__(self) -> None:
        pass  # see the class docstring


def shared_limiter(settings: Settings, prefix: str) -> MovingWindowRateLimiter:
    """Moving windows in MONGODB_URI/MONGODB_DB, collections `<prefix>_counters` and
    `<prefix>_windows`; limits raises StorageError when MongoDB fails."""
    return MovingWindowRateLimiter(
        SharedStorage(
            settings.mongodb_uri,
            database_name=settings.mongodb_db,
            counter_collection_name=f"{prefix}_counters",
            window_collection_name=f"{prefix}_windows",
            wrap_exceptions=True,
            appname=f"gateway-{prefix.replace('_', '-')}",
            serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
            connectTimeoutMS=settings.mongodb_timeout_ms,
            socketTimeoutMS=settings.mongodb_timeout_ms,
        )
    )
