"""Conversion jobs in MongoDB: the record the gateway, converter and notifier share.

A job's `_id` is the GridFS id of the uploaded video, the `fid` the upload answers with,
the mail names and /status and /download take. Its life: queued → converting → done |
failed; `notified_at` is set once its mail has gone, so a redelivered message sends none.
Every transition is one conditional update, so a redelivered or duplicated message
cannot move a finished job backwards.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database

QUEUED, CONVERTING, DONE, FAILED = "queued", "converting", "done", "failed"
STATES = (QUEUED, CONVERTING, DONE, FAILED)
FINAL_STATES = (DONE, FAILED)

#: GridFS buckets: uploads and results. 1 MiB chunks: 4x fewer round trips than the
#: 255 KiB default, still far below the 16 MiB document limit.
VIDEO_BUCKET = "videos"
MP3_BUCKET = "mp3s"
CHUNK_SIZE_BYTES = 1024 * 1024


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_id(text: str | None) -> ObjectId | None:
    """The ObjectId in `text`, or None when it is not one (callers answer 404 then)."""
    if not text:
        return None
    try:
        return ObjectId(text.strip())
    except (InvalidId, TypeError):
        return None


class Jobs:
    def __init__(self, database: Database) -> None:
        self.collection = database["jobs"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("owner", ASCENDING), ("created_at", DESCENDING)])
        self.collection.create_index([("mp3_fid", ASCENDING)])

    # --- the gateway -------------------------------------------------------------------

    def create(
        self,
        job_id: ObjectId,
        *,
        owner: str,
        filename: str,
        size: int,
        content_type: str | None,
        request_id: str | None,
    ) -> dict[str, Any]:
        job = {
            "_id": job_id,
            "owner": owner,
            "filename": filename,
            "size": size,
            "content_type": content_type,
            "state": QUEUED,
            "created_at": now(),
            "updated_at": now(),
            "request_id": request_id,
            "attempts": 0,
        }
        self.collection.insert_one(job)
        return job

    def mark_published(self, job_id: ObjectId) -> None:
        """The broker confirmed the job's `video` message (see `claim_unpublished`)."""
        self.collection.update_one({"_id": job_id}, {"$set": {"published_at": now()}})

    def claim_unpublished(self, created_before: dt.datetime) -> dict[str, Any] | None:
        """A queued job whose message was never confirmed (its gateway worker died between
        writing it and publishing), claimed for republishing by exactly one caller."""
        return self.collection.find_one_and_update(
            {"state": QUEUED, "published_at": None, "created_at": {"$lt": created_before}},
            {"$set": {"published_at": now(), "republished": True}},
            return_document=ReturnDocument.AFTER,
        )

    def unmark_published(self, job_id: ObjectId) -> None:
        self.collection.update_one({"_id": job_id}, {"$set": {"published_at": None}})

    def delete(self, job_id: ObjectId) -> None:
        self.collection.delete_one({"_id": job_id})

    def get(self, job_id: ObjectId) -> dict[str, Any] | None:
        return self.collection.find_one({"_id": job_id})

    def for_owner(self, fid: ObjectId, owner: str) -> dict[str, Any] | None:
        """The owner's job by its id or by its MP3's id; None for anyone else's."""
        return self.collection.find_one({"$or": [{"_id": fid}, {"mp3_fid": fid}], "owner": owner})

    def list_for_owner(self, owner: str, *, limit: int, skip: int) -> list[dict[str, Any]]:
        cursor = (
            self.collection.find({"owner": owner})
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return list(cursor)

    def count_for_owner(self, owner: str) -> int:
        return self.collection.count_documents({"owner": owner})

    # --- the converter -----------------------------------------------------------------

    def start(self, job_id: ObjectId) -> dict[str, Any] | None:
        """Mark the job converting; None when it is already final (a redelivery)."""
        return self.collection.find_one_and_update(
            {"_id": job_id, "state": {"$in": [QUEUED, CONVERTING]}},
            {"$set": {"state": CONVERTING, "updated_at": now()}, "$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )

    def note_attempt_end(self, job_id: ObjectId, how: str) -> None:
        """Count an attempt that ended without finishing the job but with a word about it
        (`failed_attempts`, `handed_back`); attempts not counted so ended in a crash."""
        self.collection.update_one({"_id": job_id}, {"$inc": {how: 1}})

    def note_mp3_upload(self, job_id: ObjectId, mp3_fid: ObjectId) -> None:
        """Record an MP3's id on the job before its first chunk is written, so that a later
        attempt can remove what an interrupted upload left (chunks with no file document)."""
        self.collection.update_one({"_id": job_id}, {"$addToSet": {"mp3_uploads": mp3_fid}})

    def finish(
        self,
        job_id: ObjectId,
        *,
        mp3_fid: ObjectId,
        mp3_size: int,
        duration_seconds: float | None,
        attempt: int | None = None,
    ) -> bool:
        """Mark the job done; False when it is not converting (or, given `attempt`, when a
        later attempt has started since: a converter that lost its message must not win)."""
        match: dict[str, Any] = {"_id": job_id, "state": CONVERTING}
        if attempt is not None:
            match["attempts"] = attempt
        result = self.collection.update_one(
            match,
            {
                "$set": {
                    "state": DONE,
                    "mp3_fid": mp3_fid,
                    "mp3_size": mp3_size,
                    "duration_seconds": duration_seconds,
                    "updated_at": now(),
                    "finished_at": now(),
                }
            },
        )
        return result.modified_count == 1

    def fail(self, job_id: ObjectId, reason: str) -> bool:
        result = self.collection.update_one(
            {"_id": job_id, "state": {"$in": [QUEUED, CONVERTING]}},
            {
                "$set": {
                    "state": FAILED,
                    "reason": reason,
                    "updated_at": now(),
                    "finished_at": now(),
                }
            },
        )
        return result.modified_count == 1

    # --- the notifier ------------------------------------------------------------------

    def claim_notification(
        self, job_id: ObjectId, claimant: str, *, lease_seconds: float
    ) -> dict[str, Any] | None:
        """Take the right to send a finished job's mail for `lease_seconds`.

        None when the job is not finished, already notified, or someone else's claim is
        still running. Two copies of one message handled at once (two notifier replicas)
        thus send one mail; a claimant that died frees the job when its lease runs out.
        """
        moment = now()
        return self.collection.find_one_and_update(
            {
                "_id": job_id,
                "state": {"$in": list(FINAL_STATES)},
                "notified_at": None,
                "$or": [
                    {"notify_claim": None},
                    {"notify_claim.until": {"$lt": moment}},
                    {"notify_claim.by": claimant},
                ],
            },
            {
                "$set": {
                    "notify_claim": {
                        "by": claimant,
                        "until": moment + dt.timedelta(seconds=lease_seconds),
                    }
                }
            },
            return_document=ReturnDocument.AFTER,
        )

    def release_notification(
        self, job_id: ObjectId, claimant: str, *, error: str | None = None
    ) -> None:
        """Give the claim up after a failed send, recording why (`notify_error`)."""
        update: dict[str, Any] = {"$unset": {"notify_claim": ""}}
        if error is not None:
            update["$set"] = {"notify_error": error, "updated_at": now()}
        self.collection.update_one({"_id": job_id, "notify_claim.by": claimant}, update)

    def mark_notified(self, job_id: ObjectId) -> bool:
        """Record the mail as sent; False if it already was (then none more is sent)."""
        result = self.collection.update_one(
            {"_id": job_id, "notified_at": None},
            {
                "$set": {"notified_at": now(), "updated_at": now()},
                "$unset": {"notify_claim": "", "notify_error": ""},
            },
        )
        return result.modified_count == 1


def public_view(job: dict[str, Any]) -> dict[str, Any]:
    """What the owner may see of a job, JSON-ready."""
    view = {
        "fid": str(job["_id"]),
        "filename": job.get("filename"),
        "size": job.get("size"),
        "state": job["state"],
        "created_at": _iso(job.get("created_at")),
        "updated_at": _iso(job.get("updated_at")),
    }
    if job["state"] == DONE:
        view.update(
            mp3_fid=str(job["mp3_fid"]),
            mp3_size=job.get("mp3_size"),
            duration_seconds=job.get("duration_seconds"),
        )
    if job["state"] == FAILED:
        view["reason"] = job.get("reason")
    return view


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # pymongo hands back naive UTC unless told otherwise
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


# --- the messages between the services ---------------------------------------------------
# The reference's fields (video_fid, mp3_fid, username) stay; the rest is what a consumer
# needs without reading the job first.


def video_message(job: dict[str, Any]) -> dict[str, Any]:
    """Gateway → converter, on the `video` queue."""
    return {
        "video_fid": str(job["_id"]),
        "mp3_fid": None,
        "username": job["owner"],
        "filename": job.get("filename"),
    }


def mp3_message(job: dict[str, Any]) -> dict[str, Any]:
    """Converter → notifier, on the `mp3` queue: a finished job, converted or failed."""
    return {
        "video_fid": str(job["_id"]),
        "mp3_fid": str(job["mp3_fid"]) if job.get("mp3_fid") else None,
        "username": job["owner"],
        "filename": job.get("filename"),
        "state": job["state"],
        "reason": job.get("reason"),
    }
