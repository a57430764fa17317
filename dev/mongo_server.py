"""Dev/test MongoDB stand-in: mongoeco's wire server on its in-memory engine.

No mongod binary is available on our machines, so for development and tests we
serve the MongoDB wire protocol with the PyPI package ``mongoeco`` (pinned in
``dev/requirements-mongo.txt``; it needs Python >= 3.13, hence its own venv)::

    python3.13 -m venv .venv-mongo
    .venv-mongo/bin/pip install -r dev/requirements-mongo.txt
    .venv-mongo/bin/python dev/mongo_server.py --host 127.0.0.1 --port 27017

Clients connect with ``mongodb://127.0.0.1:27017``. The storage is the
in-memory ``MemoryEngine`` (mongoeco's SQLite engine is far too slow for video
payloads), so all data is lost when the process stops. SIGTERM and SIGINT
close the listener and exit with status 0.

Two mongoeco 4.11.0 defects are patched at start (see ``patch_mongoeco``):

1. Cursor batches ignore mongod's 16 MiB limit. Without a client batchSize,
   mongoeco returns the whole result in ``firstBatch`` (and a ``getMore``
   without batchSize returns all the rest). Reading a GridFS file larger than
   ~45 MB then fails in pymongo with ``ProtocolError: Message length (...) is
   larger than server max message size (48000000)``. Like mongod, we cap each
   ``firstBatch``/``nextBatch`` at 16 MiB of BSON (always at least one
   document) and leave the rest to ``getMore``.
2. pymongo's ``MongoClient.server_info()`` sends the lower-case ``buildinfo``
   command, which mongoeco rejects as unsupported although it implements
   ``buildInfo``. We rename the command before dispatch.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

import bson
from mongoeco.engines.memory import MemoryEngine
from mongoeco.wire import AsyncMongoEcoProxyServer
from mongoeco.wire.bson_bridge import encode_wire_value
from mongoeco.wire.cursors import WireCursorStore
from mongoeco.wire.executor import WireCommandExecutor

log = logging.getLogger("mongo_server")

#: mongod's per-batch limit: a reply batch holds at most 16 MiB of documents.
MAX_BATCH_BYTES = 16 * 1024 * 1024

_COMMAND_ALIASES = {"buildinfo": "buildInfo"}


def _bson_size(document: object) -> int:
    try:
        return len(bson.encode(encode_wire_value(document)))
    except Exception:  # not encodable on its own: let mongoeco handle it as before
        return 0


def _docs_within_limit(documents: list[object], limit: int | None) -> int:
    """How many leading documents (at most ``limit``, at least one) fit in 16 MiB."""
    stop = len(documents) if not limit else min(limit, len(documents))
    total = 0
    for index in range(stop):
        total += _bson_size(documents[index])
        if total > MAX_BATCH_BYTES and index > 0:
            return index
    return stop


def patch_mongoeco() -> None:
    """Apply the two small fixes described in the module docstring (idempotent)."""
    if getattr(WireCursorStore, "_mp3converter_patched", False):
        return
    original_materialize = WireCursorStore.materialize_command_result
    original_get_more = WireCursorStore.get_more
    original_build_context = WireCommandExecutor._build_request_context

    def materialize_command_result(self, command_document, result, **kwargs):
        cursor = result.get("cursor") if isinstance(result, dict) else None
        batch = cursor.get("firstBatch") if isinstance(cursor, dict) else None
        if isinstance(batch, list) and batch:
            requested = self._resolve_batch_size(command_document)
            fit = _docs_within_limit(batch, requested)
            if fit < len(batch) and (not requested or fit < requested):
                # mongoeco slices firstBatch at batchSize and keeps the rest
                # for getMore; hand it the size-capped count instead.
                command_document = {**command_document, "batchSize": fit}
        return original_materialize(self, command_document, result, **kwargs)

    def get_more(self, command_document, **kwargs):
        state = self._state.get(command_document.get("getMore"))
        if state is not None and state.remaining_batch:
            requested = command_document.get("batchSize")
            valid = (
                isinstance(requested, int) and not isinstance(requested, bool) and requested >= 0
            )
            if requested is None or valid:  # invalid values: mongoeco raises as before
                fit = _docs_within_limit(state.remaining_batch, requested)
                if fit < len(state.remaining_batch) and (not requested or fit < requested):
                    command_document = {**command_document, "batchSize": fit}
        return original_get_more(self, command_document, **kwargs)

    def _build_request_context(self, body, **kwargs):
        if isinstance(body, dict) and body:
            first = next(iter(body))
            if first in _COMMAND_ALIASES:
                renamed = _COMMAND_ALIASES[first]
                body = {(renamed if key == first else key): value for key, value in body.items()}
        return original_build_context(self, body, **kwargs)

    WireCursorStore.materialize_command_result = materialize_command_result
    WireCursorStore.get_more = get_more
    WireCommandExecutor._build_request_context = _build_request_context
    WireCursorStore._mp3converter_patched = True


async def serve(host: str, port: int) -> None:
    patch_mongoeco()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = AsyncMongoEcoProxyServer(engine=MemoryEngine(), host=host, port=port)
    address = await server.start()
    try:
        log.info(
            "mongoeco wire server (in-memory engine) listening on %s:%d", address.host, address.port
        )
        await stop.wait()
        log.info("shutting down")
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=27017, help="TCP port (default 27017)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
