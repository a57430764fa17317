"""One MongoClient per process, with bounded timeouts so an outage is an error, not a hang."""

from __future__ import annotations

import threading

from pymongo import MongoClient

_lock = threading.Lock()
_clients: dict[str, MongoClient] = {}


def client(uri: str, *, app_name: str, timeout_ms: int = 3000) -> MongoClient:
    """The process's client for `uri`, made on first use (after any fork, as pymongo needs)."""
    with _lock:
        if uri not in _clients:
            _clients[uri] = MongoClient(
                uri,
                appname=app_name,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                socketTimeoutMS=30_000,
                tz_aware=True,
            )
        return _clients[uri]
