"""The orphan sweep: uploads a killed gateway worker left half-written are removed.

An upload is marked in progress (gridfs_writer.in_progress) from before its first chunk
until its job is written; the writer touches the mark at least once a minute while bytes
arrive. A gateway worker killed mid-upload (out of memory, a node lost, kill -9) removes
nothing, so its chunks, or a whole file whose job was never written, would stay forever.
A mark untouched for longer than the grace period belongs to such an upload: the sweep
claims it (one atomic delete, so two processes never sweep the same upload) and removes
the file's chunks and files document, unless a job owns the file (the worker died after
writing the job, before removing the mark: then only the mark goes).
"""

from __future__ import annotations

import datetime as dt
import logging

from pymongo.database import Database

from mp3common.jobs import VIDEO_BUCKET, now

from .gridfs_writer import in_progress

log = logging.getLogger(__name__)


def remove_abandoned_uploads(
    database: Database, *, older_than_seconds: float, bucket: str = VIDEO_BUCKET
) -> int:
    """Remove every upload whose mark is older than `older_than_seconds` and that no job
    owns; how many were removed."""
    marks = in_progress(database, bucket)
    stale = {"touched_at": {"$lt": now() - dt.timedelta(seconds=older_than_seconds)}}
    removed = 0
    while (mark := marks.find_one_and_delete(stale)) is not None:
        fid = mark["_id"]
        if database["jobs"].find_one({"_id": fid}, {"_id": 1}) is not None:
            continue
        chunks = database[f"{bucket}.chunks"].delete_many({"files_id": fid}).deleted_count
        database[f"{bucket}.files"].delete_one({"_id": fid})
        removed += 1
        log.warning(
            "removed upload %s: %d chunks that no job owns, untouched for over %d s "
            "(its gateway worker stopped mid-upload)",
            fid,
            chunks,
            older_than_seconds,
        )
    return removed
