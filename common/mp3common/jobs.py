"""Conversion jobs in MongoDB: the record the gateway, converter and notifier share.

A job is one uploaded video and what became of it, one document in the `jobs` collection,
read as a `Job`. Its id (`job_id` in the code, `_id` in MongoDB) is the GridFS id of the
uploaded video: the `fid` the upload answers with and /status and /download take, and the
`video_fid` of the messages. Its person is the `owner` (`username` in the messages, `sub`
in the token).

Its life (each arrow one conditional update, so a redelivered or duplicated message cannot
move a finished job backwards)::

    queued ──start──▶ converting ──finish──▶ done ──expire──▶ (output removed)
     │ ▲ │              │  ▲
     │ │ │              │  └─ start again: a redelivery after a failed, handed-back or
     │ │ │              │     crashed attempt (`attempts` counts the starts)
     │ │ └─────fail─────┴──────fail──────▶ failed (with a `reason` for its owner)
     │ │                │                    │
     └─┼────cancel──────┴─────cancel──────▶ cancelled (by its owner; no mail)
       │                                     │
       └──────────retry (its owner)──────────┘  while the video is kept

`options` are what the owner asked for (mp3common.options); while converting, `progress`
(0-100) and `eta_seconds` say how far along it is. A finished job has `expires_at`: when
its output (done) or its kept video (failed, cancelled) is removed by the expiry sweep,
which then sets `expired_at`. Deleting a job (its owner) removes its files and the record.

Alongside: `published_at` once the broker confirmed its `video` message (the outbox relay
publishes the jobs that never got one); `notified_at` once its mail has gone, so a
redelivered `mp3` message sends none; `notify_failed_at` (with `notify_error`) once the
mail failed for good (an address no server takes, a 5xx, a mail that cannot be made).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from enum import StrEnum
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database

from .options import DEFAULT_OPTIONS, ConversionOptions


class State(StrEnum):
    QUEUED = "queued"
    CONVERTING = "converting"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


QUEUED, CONVERTING, DONE, FAILED = State.QUEUED, State.CONVERTING, State.DONE, State.FAILED
CANCELLED = State.CANCELLED
STATES = tuple(State)
FINAL_STATES = (DONE, FAILED, CANCELLED)
#: The finished states whose owner gets a mail (a cancelled job's owner did it).
MAILED_STATES = (DONE, FAILED)
#: The states a job can be retried from (its video is kept until it expires).
RETRYABLE_STATES = (FAILED, CANCELLED)


class AttemptEnd(StrEnum):
    """How a conversion attempt ended without finishing its job, when it could say so.

    Each is counted on the job under its value. An attempt that was started and counted
    under neither ended without a word: its converter was killed or ran out of memory.
    """

    FAILED = "failed_attempts"  # an error; the message goes back to the queue
    HANDED_BACK = "handed_back"  # the converter was stopping (SIGTERM); not the file's fault


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


@dataclasses.dataclass(frozen=True)
class NotifyClaim:
    """A notifier's right to send the job's mail, until `until` (UTC)."""

    by: str
    until: dt.datetime


@dataclasses.dataclass(frozen=True)
class AudioTrack:
    """The source's audio stream that was converted: ffmpeg's stream index, its codec and
    language (None when the file does not say)."""

    index: int
    codec: str
    language: str | None = None


@dataclasses.dataclass(frozen=True)
class Job:
    """One document of the `jobs` collection (see the module docstring for its life).

    Times are UTC datetimes; sizes in bytes; durations in seconds.
    """

    id: ObjectId
    owner: str
    state: State
    filename: str | None = None
    #: The uploaded video's size and its detected media type.
    size: int | None = None
    content_type: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    #: The upload's X-Request-ID, carried into every service's logs for this job.
    request_id: str | None = None
    #: What the owner asked for, and what the gateway told them about it (an option ignored).
    options: ConversionOptions = DEFAULT_OPTIONS
    notes: tuple[str, ...] = ()
    #: The longest media this job may convert, in seconds (the owner's quota; None: the
    #: converter's own MAX_MEDIA_SECONDS alone).
    max_media_seconds: float | None = None
    #: How many times its owner retried it, and when it was last queued again so.
    retries: int = 0
    queued_at: dt.datetime | None = None
    # --- the outbox: is the `video` message confirmed by the broker? --------------------
    published_at: dt.datetime | None = None
    republished: bool = False
    # --- the converter's attempts ---------------------------------------------------------
    #: How many times a converter started the job.
    attempts: int = 0
    #: While converting: per cent done (0-100) and the seconds still to go, from ffmpeg's
    #: progress against the media's length (None until ffmpeg reports).
    progress: float | None = None
    eta_seconds: float | None = None
    failed_attempts: int = 0
    handed_back: int = 0
    #: The id of every MP3 an attempt began to store (to remove what a dead one left).
    mp3_uploads: tuple[ObjectId, ...] = ()
    # --- the result -----------------------------------------------------------------------
    mp3_fid: ObjectId | None = None
    mp3_size: int | None = None
    duration_seconds: float | None = None
    audio_track: AudioTrack | None = None
    #: Something the owner of a done job should know, e.g. that the file looks cut off.
    warning: str | None = None
    #: The source's audio stream went into the output as it was (no re-encoding).
    copied: bool = False
    #: The tags written into the output (title, artist, album, date, comment) and whether
    #: it has a cover picture.
    tags: dict[str, str] | None = None
    cover: bool = False
    #: Why the job failed, written for its owner.
    reason: str | None = None
    cancelled_at: dt.datetime | None = None
    # --- retention --------------------------------------------------------------------------
    #: When the expiry sweep removes the output (done) or the kept video (failed,
    #: cancelled); `expired_at` once it did.
    expires_at: dt.datetime | None = None
    expired_at: dt.datetime | None = None
    # --- the mail -------------------------------------------------------------------------
    notify_claim: NotifyClaim | None = None
    #: Why the last try to send the mail failed.
    notify_error: str | None = None
    notified_at: dt.datetime | None = None
    #: When the mail failed for good (`notify_error` says why); unset again if it goes later.
    notify_failed_at: dt.datetime | None = None

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Job:
        """The job in a `jobs` document; fields it does not know are ignored."""
        known = {field.name for field in dataclasses.fields(cls)} - {"id"}
        values = {key: value for key, value in document.items() if key in known}
        values["state"] = State(document["state"])
        values["mp3_uploads"] = tuple(document.get("mp3_uploads") or ())
        values["notes"] = tuple(document.get("notes") or ())
        values["options"] = ConversionOptions.model_validate(document.get("options") or {})
        if track := document.get("audio_track"):
            values["audio_track"] = AudioTrack(**track)
        if claim := document.get("notify_claim"):
            values["notify_claim"] = NotifyClaim(by=claim["by"], until=claim["until"])
        return cls(id=document["_id"], **values)

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def crashed_attempts(self) -> int:
        """Attempts before the current one that ended without a word (see AttemptEnd).

        The current attempt is the last one started, so it is not counted.
        """
        return max(self.attempts - 1 - self.failed_attempts - self.handed_back, 0)


def _job(document: dict[str, Any] | None) -> Job | None:
    return None if document is None else Job.from_document(document)


class Jobs:
    def __init__(self, database: Database) -> None:
        self.collection = database["jobs"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("owner", ASCENDING), ("created_at", DESCENDING)])
        self.collection.create_index([("mp3_fid", ASCENDING)])
        self.collection.create_index([("expires_at", ASCENDING)], sparse=True)

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
        options: ConversionOptions = DEFAULT_OPTIONS,
        notes: tuple[str, ...] | list[str] = (),
        max_media_seconds: float | None = None,
    ) -> Job:
        document = {
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
            "options": options.model_dump(mode="json"),
            "notes": list(notes),
            "max_media_seconds": max_media_seconds,
        }
        self.collection.insert_one(document)
        return Job.from_document(document)

    def mark_published(self, job_id: ObjectId) -> None:
        """The broker confirmed the job's `video` message (see `claim_unpublished`)."""
        self.collection.update_one({"_id": job_id}, {"$set": {"published_at": now()}})

    def claim_unpublished(self, created_before: dt.datetime) -> Job | None:
        """A queued job whose message was never confirmed (its gateway worker died between
        writing it and publishing), claimed for republishing by exactly one caller."""
        return _job(
            self.collection.find_one_and_update(
                {
                    "state": QUEUED,
                    "published_at": None,
                    "created_at": {"$lt": created_before},
                    # A retried job is queued anew: the relay waits from then, as for an upload.
                    "$or": [{"queued_at": None}, {"queued_at": {"$lt": created_before}}],
                },
                {"$set": {"published_at": now(), "republished": True}},
                return_document=ReturnDocument.AFTER,
            )
        )

    def unmark_published(self, job_id: ObjectId) -> None:
        self.collection.update_one({"_id": job_id}, {"$set": {"published_at": None}})

    def delete(self, job_id: ObjectId) -> None:
        self.collection.delete_one({"_id": job_id})

    def get(self, job_id: ObjectId) -> Job | None:
        return _job(self.collection.find_one({"_id": job_id}))

    def for_owner(self, file_id: ObjectId, owner: str) -> Job | None:
        """The owner's job by its id or by its MP3's id; None for anyone else's."""
        return _job(
            self.collection.find_one(
                {"$or": [{"_id": file_id}, {"mp3_fid": file_id}], "owner": owner}
            )
        )

    def list_for_owner(self, owner: str, *, limit: int, skip: int) -> list[Job]:
        cursor = (
            self.collection.find({"owner": owner})
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return [Job.from_document(document) for document in cursor]

    def count_for_owner(self, owner: str) -> int:
        return self.collection.count_documents({"owner": owner})

    # --- the converter -----------------------------------------------------------------

    def start(self, job_id: ObjectId) -> Job | None:
        """Mark the job converting and count the attempt; None when it is already final
        (a redelivery)."""
        return _job(
            self.collection.find_one_and_update(
                {"_id": job_id, "state": {"$in": [QUEUED, CONVERTING]}},
                {"$set": {"state": CONVERTING, "updated_at": now()}, "$inc": {"attempts": 1}},
                return_document=ReturnDocument.AFTER,
            )
        )

    def note_attempt_end(self, job_id: ObjectId, how: AttemptEnd) -> None:
        """Count an attempt that ended without finishing the job but with a word about it;
        `Job.crashed_attempts` counts the others."""
        self.collection.update_one({"_id": job_id}, {"$inc": {AttemptEnd(how).value: 1}})

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
        audio_track: AudioTrack | None = None,
        warning: str | None = None,
        copied: bool = False,
        tags: dict[str, str] | None = None,
        cover: bool = False,
        expires_at: dt.datetime | None = None,
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
                    "audio_track": dataclasses.asdict(audio_track) if audio_track else None,
                    "warning": warning,
                    "copied": copied,
                    "tags": tags,
                    "cover": cover,
                    "expires_at": expires_at,
                    "updated_at": now(),
                    "finished_at": now(),
                },
                "$unset": {"progress": "", "eta_seconds": ""},
            },
        )
        return result.modified_count == 1

    def fail(self, job_id: ObjectId, reason: str, *, expires_at: dt.datetime | None = None) -> bool:
        """Mark a queued or converting job failed; `expires_at`: when its kept video goes."""
        result = self.collection.update_one(
            {"_id": job_id, "state": {"$in": [QUEUED, CONVERTING]}},
            {
                "$set": {
                    "state": FAILED,
                    "reason": reason,
                    "expires_at": expires_at,
                    "updated_at": now(),
                    "finished_at": now(),
                },
                "$unset": {"progress": "", "eta_seconds": ""},
            },
        )
        return result.modified_count == 1

    def note_progress(
        self, job_id: ObjectId, attempt: int, *, progress: float | None, eta_seconds: float | None
    ) -> bool:
        """Record how far `attempt` is (per cent, seconds to go; None: not known yet).

        False when the job is no longer this attempt's to convert (cancelled, deleted, or a
        later attempt started): the converter then stops.
        """
        update: dict[str, Any] = {"updated_at": now()}
        if progress is not None:
            update["progress"] = round(min(max(progress, 0.0), 100.0), 1)
            update["eta_seconds"] = None if eta_seconds is None else round(max(eta_seconds, 0.0))
        result = self.collection.update_one(
            {"_id": job_id, "state": CONVERTING, "attempts": attempt}, {"$set": update}
        )
        return result.matched_count == 1

    # --- its owner (the gateway) ---------------------------------------------------------

    def cancel(self, job_id: ObjectId, owner: str, *, expires_at: dt.datetime) -> Job | None:
        """Cancel the owner's queued or converting job (the converter converting it stops
        within a second or two); None when it is not theirs or not queued or converting."""
        return _job(
            self.collection.find_one_and_update(
                {"_id": job_id, "owner": owner, "state": {"$in": [QUEUED, CONVERTING]}},
                {
                    "$set": {
                        "state": CANCELLED,
                        "cancelled_at": now(),
                        "finished_at": now(),
                        "updated_at": now(),
                        "expires_at": expires_at,
                        "reason": "cancelled by its owner",
                    },
                    "$unset": {"progress": "", "eta_seconds": ""},
                },
                return_document=ReturnDocument.AFTER,
            )
        )

    def retry(self, job_id: ObjectId, owner: str) -> Job | None:
        """Queue the owner's failed or cancelled job again, as new (attempts, reason and the
        mail forgotten; `retries` counted); None when it is not theirs, not failed or
        cancelled, or its video has expired (or its `expires_at` has come). The caller
        publishes its `video` message."""
        return _job(
            self.collection.find_one_and_update(
                {
                    "_id": job_id,
                    "owner": owner,
                    "state": {"$in": list(RETRYABLE_STATES)},
                    "expired_at": None,
                    # Not once its expiry has come: the sweep may be removing its video.
                    "$or": [{"expires_at": None}, {"expires_at": {"$gt": now()}}],
                },
                {
                    "$set": {
                        "state": QUEUED,
                        "updated_at": now(),
                        "attempts": 0,
                        "failed_attempts": 0,
                        "handed_back": 0,
                        "published_at": None,
                        "queued_at": now(),
                    },
                    "$inc": {"retries": 1},
                    "$unset": {
                        field: ""
                        for field in (
                            "reason",
                            "finished_at",
                            "cancelled_at",
                            "expires_at",
                            "notified_at",
                            "notify_claim",
                            "notify_error",
                            "notify_failed_at",
                            "warning",
                        )
                    },
                },
                return_document=ReturnDocument.AFTER,
            )
        )

    def delete_for_owner(self, job_id: ObjectId, owner: str) -> Job | None:
        """Remove the owner's job record (its files are the caller's to remove first);
        the job as it was, or None when it is not theirs."""
        return _job(self.collection.find_one_and_delete({"_id": job_id, "owner": owner}))

    def stored_bytes(self, owner: str) -> int:
        """What the owner's files take in storage, in bytes: the videos still kept (queued,
        converting, failed or cancelled and not expired) and the outputs not expired."""
        pipeline = [
            {"$match": {"owner": owner, "expired_at": None}},
            {
                "$group": {
                    "_id": None,
                    "bytes": {
                        "$sum": {
                            "$cond": [
                                {"$eq": ["$state", DONE.value]},
                                {"$ifNull": ["$mp3_size", 0]},
                                {"$ifNull": ["$size", 0]},
                            ]
                        }
                    },
                }
            },
        ]
        found = list(self.collection.aggregate(pipeline))
        return int(found[0]["bytes"]) if found else 0

    def next_expiry(self, owner: str) -> dt.datetime | None:
        """When the owner's next stored file expires (frees quota), if any does."""
        document = self.collection.find_one(
            {"owner": owner, "expired_at": None, "expires_at": {"$ne": None}},
            sort=[("expires_at", ASCENDING)],
            projection={"expires_at": 1},
        )
        return document["expires_at"] if document else None

    # --- the expiry sweep ------------------------------------------------------------------

    def claim_expired(self, claimant: str, *, lease_seconds: float) -> Job | None:
        """A finished job whose `expires_at` has passed, claimed by exactly one sweeper for
        `lease_seconds` (a sweeper that died frees it when the lease runs out)."""
        moment = now()
        return _job(
            self.collection.find_one_and_update(
                {
                    "expires_at": {"$lt": moment},
                    "expired_at": None,
                    "state": {"$in": list(FINAL_STATES)},
                    "$or": [
                        {"expiry_claim": None},
                        {"expiry_claim.until": {"$lt": moment}},
                    ],
                },
                {
                    "$set": {
                        "expiry_claim": {
                            "by": claimant,
                            "until": moment + dt.timedelta(seconds=lease_seconds),
                        }
                    }
                },
                return_document=ReturnDocument.AFTER,
            )
        )

    def mark_expired(self, job_id: ObjectId, claimant: str) -> bool:
        """The claimant removed what expired; False if its claim was lost meanwhile."""
        result = self.collection.update_one(
            {"_id": job_id, "expiry_claim.by": claimant},
            {"$set": {"expired_at": now(), "updated_at": now()}, "$unset": {"expiry_claim": ""}},
        )
        return result.modified_count == 1

    # --- the notifier ------------------------------------------------------------------

    def claim_notification(
        self, job_id: ObjectId, claimant: str, *, lease_seconds: float
    ) -> Job | None:
        """Take the right to send a finished job's mail for `lease_seconds`.

        None when the job is not finished, already notified, or someone else's claim is
        still running. Two copies of one message handled at once (two notifier replicas)
        thus send one mail; a claimant that died frees the job when its lease runs out.
        """
        moment = now()
        document = self.collection.find_one_and_update(
            {
                "_id": job_id,
                "state": {"$in": list(MAILED_STATES)},
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
        return _job(document)

    def release_notification(
        self, job_id: ObjectId, claimant: str, *, error: str | None = None, final: bool = False
    ) -> None:
        """Give the claim up after a failed send, recording why (`notify_error`); `final`:
        the mail failed for good (`notify_failed_at`), nobody will try it again."""
        update: dict[str, Any] = {"$unset": {"notify_claim": ""}}
        match: dict[str, Any] = {"_id": job_id, "notify_claim.by": claimant}
        if error is not None:
            update["$set"] = {"notify_error": error, "updated_at": now()}
        if error is not None and final:
            update["$set"]["notify_failed_at"] = now()
            # Also when the claim was never taken (the record could not even be read):
            # whatever failed for good is recorded, unless another notifier holds the job.
            match = {
                "_id": job_id,
                "notified_at": None,
                "$or": [
                    {"notify_claim.by": claimant},
                    {"notify_claim": None},
                    {"notify_claim.until": {"$lt": now()}},
                ],
            }
        self.collection.update_one(match, update)

    def mark_notified(self, job_id: ObjectId) -> bool:
        """Record the mail as sent; False if it already was (then none more is sent)."""
        result = self.collection.update_one(
            {"_id": job_id, "notified_at": None},
            {
                "$set": {"notified_at": now(), "updated_at": now()},
                "$unset": {"notify_claim": "", "notify_error": "", "notify_failed_at": ""},
            },
        )
        return result.modified_count == 1


MAIL_SENT, MAIL_FAILED, MAIL_PENDING = "sent", "failed", "pending"


def mail_state(job: Job) -> dict[str, Any]:
    """The owner's mail about a finished job: {"state": "sent" | "failed" | "pending",
    "reason": why it failed (or, pending, why the last try did not go), else None}."""
    if job.notified_at is not None:
        return {"state": MAIL_SENT, "reason": None}
    if job.notify_failed_at is not None:
        return {"state": MAIL_FAILED, "reason": job.notify_error}
    return {"state": MAIL_PENDING, "reason": job.notify_error}


def public_view(job: Job) -> dict[str, Any]:
    """What the owner may see of a job, JSON-ready: {"fid", "filename", "size", "state",
    "created_at", "updated_at"} (ISO 8601, UTC), "options" (every option, defaults filled
    in) and "notes" (options ignored, and why); while converting "progress" (0-100) and
    "eta_seconds" (null until ffmpeg reports); when done {"mp3_fid", "mp3_size",
    "duration_seconds", "copied", "tags", "cover"} (and "warning" when there is one), when
    failed or cancelled {"reason"}; when finished "expires_at" and "expired" (what is kept
    of it is removed then), and for done or failed "mail" (`mail_state`)."""
    view: dict[str, Any] = {
        "fid": str(job.id),
        "filename": job.filename,
        "size": job.size,
        "state": job.state.value,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "options": job.options.public(),
        "notes": list(job.notes),
    }
    if job.state == CONVERTING:
        view.update(progress=job.progress, eta_seconds=job.eta_seconds)
    if job.state == QUEUED:
        view.update(progress=0.0, eta_seconds=None)
    if job.state == DONE:
        view.update(
            mp3_fid=str(job.mp3_fid),
            mp3_size=job.mp3_size,
            duration_seconds=job.duration_seconds,
            copied=job.copied,
            tags=job.tags or {},
            cover=job.cover,
            progress=100.0,
        )
        if job.warning:
            view["warning"] = job.warning
    if job.state in (FAILED, CANCELLED):
        view["reason"] = job.reason
    if job.finished:
        view["expires_at"] = iso(job.expires_at)
        view["expired"] = job.expired_at is not None
    if job.state in MAILED_STATES:
        view["mail"] = mail_state(job)
    return view


def iso(value: dt.datetime | None) -> str | None:
    """A time as every answer shows it: ISO 8601 in UTC with `Z` (None stays None)."""
    if value is None:
        return None
    if value.tzinfo is None:  # pymongo hands back naive UTC unless told otherwise
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat().replace("+00:00", "Z")
