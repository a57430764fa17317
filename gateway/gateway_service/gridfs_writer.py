"""A GridFS file written while the upload is still arriving, in bounded memory.

pymongo's GridIn keeps up to 32 MiB of chunks before it inserts them (then encodes them
again into one message): per upload that is ~64 MiB, and with a dozen uploads at once a
gateway worker would be gigabytes large. This writer stores the same GridFS layout (the
spec's files and chunks documents, readable by any driver) but inserts a few chunks at a
time on a helper thread, so the next bytes are read from the client while the previous
ones are written to MongoDB, and at most two batches are held at any moment.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from mp3common.jobs import CHUNK_SIZE_BYTES

from .errors import UploadExpired

log = logging.getLogger(__name__)

#: Chunks inserted in one insert_many; 4 x 1 MiB keeps memory small and round trips few.
BATCH_BYTES = 4 * CHUNK_SIZE_BYTES
#: How often a file being written says it is still alive (see `in_progress`).
TOUCH_EVERY_SECONDS = 60.0


def in_progress(database: Database, bucket: str) -> Collection:
    """`<bucket>.uploading`: one `{_id: file id, touched_at}` per file still being written.

    A gateway worker killed mid-upload cannot remove its chunks; this is how they are
    found later (`orphans.py`). The writer inserts its document before the first chunk and
    touches it while bytes arrive; whoever settles the upload (the job is written, or the
    upload is undone) removes it.
    """
    return database[f"{bucket}.uploading"]


def ensure_indexes(database: Database, bucket: str) -> None:
    """The indexes the GridFS spec asks for (drivers create the same ones)."""
    database[f"{bucket}.chunks"].create_index(
        [("files_id", ASCENDING), ("n", ASCENDING)], unique=True
    )
    database[f"{bucket}.files"].create_index([("filename", ASCENDING), ("uploadDate", ASCENDING)])


class GridFSUpload:
    def __init__(
        self,
        database: Database,
        bucket: str,
        file_id: ObjectId,
        filename: str,
        metadata: dict[str, Any],
        *,
        chunk_size: int = CHUNK_SIZE_BYTES,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        self._files = database[f"{bucket}.files"]
        self._chunks = database[f"{bucket}.chunks"]
        self._file = {"_id": file_id, "chunkSize": chunk_size, "filename": filename}
        self._metadata = metadata
        self._chunk_size = chunk_size
        self._batch_limit = batch_bytes
        self._buffer = bytearray()
        self._batch: list[dict[str, Any]] = []
        self._batch_bytes = 0
        self._next_n = 0
        self.length = 0
        self._in_progress = in_progress(database, bucket)
        self._in_progress.insert_one({"_id": file_id, "touched_at": dt.datetime.now(dt.UTC)})
        self._touched = time.monotonic()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridfs-writer")
        self._pending: Future | None = None

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.length += len(data)
        if time.monotonic() - self._touched > TOUCH_EVERY_SECONDS:
            self._touch()
        while len(self._buffer) >= self._chunk_size:
            self._add_chunk(bytes(self._buffer[: self._chunk_size]))
            del self._buffer[: self._chunk_size]

    def close(self) -> None:
        """Write what is left and the files document: from now on the file exists."""
        try:
            if self._buffer:
                self._add_chunk(bytes(self._buffer))
                self._buffer.clear()
            self._submit()
            self._wait()
            self._touch()
            self._files.insert_one(
                {
                    **self._file,
                    "length": self.length,
                    "uploadDate": dt.datetime.now(dt.UTC),
                    "metadata": self._metadata,
                }
            )
        finally:
            self._executor.shutdown(wait=True)

    def abort(self) -> None:
        """Remove every chunk written so far (and the file, if it was already closed)."""
        try:
            self._wait()
        except Exception:  # noqa: BLE001 - the chunks are deleted whatever that insert did
            log.debug("the last chunk insert failed while aborting", exc_info=True)
        self._executor.shutdown(wait=True)
        self._chunks.delete_many({"files_id": self._file["_id"]})
        self._files.delete_one({"_id": self._file["_id"]})
        self._in_progress.delete_one({"_id": self._file["_id"]})

    def _touch(self) -> None:
        """Say the upload is alive; UploadExpired if the orphan sweep has taken it already
        (its chunks may be gone: the file can only be sent again)."""
        touched = self._in_progress.update_one(
            {"_id": self._file["_id"]}, {"$set": {"touched_at": dt.datetime.now(dt.UTC)}}
        )
        if touched.matched_count != 1:
            raise UploadExpired(
                "upload_expired",
                "The upload paused for too long and was dropped; send the file again.",
            )
        self._touched = time.monotonic()

    def _add_chunk(self, data: bytes) -> None:
        self._batch.append({"files_id": self._file["_id"], "n": self._next_n, "data": data})
        self._next_n += 1
        self._batch_bytes += len(data)
        if self._batch_bytes >= self._batch_limit:
            self._submit()

    def _submit(self) -> None:
        """Hand the batch to the writer thread, after the previous one is in (at most one
        insert in flight: that bounds memory, and a failure surfaces within a batch)."""
        if not self._batch:
            return
        self._wait()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._pending = self._executor.submit(self._chunks.insert_many, batch, ordered=True)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()
