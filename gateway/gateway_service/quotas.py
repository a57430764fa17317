"""Quotas per user: the bytes their files take, their uploads per hour, the media length
of one upload. Each is a setting; 0 turns it off.

- QUOTA_STORED_BYTES: what the owner's kept videos and outputs take (Jobs.stored_bytes),
  and, for a resumable upload's creation, the lengths of their unfinished ones (`used`
  counts them, `unfinished_upload_bytes` says how much of it they are). Judged before the
  body is read, from its Content-Length, and again while it streams: 413 `quota_exceeded`;
  it frees when the next of their files or unfinished uploads expires (`frees_at`).
- QUOTA_JOBS_PER_HOUR: uploads in any hour, a moving window of `limits` in MongoDB (every
  replica counts the same, as the login limits do). Tested before the body is read and
  counted when the job is written: 429 `quota_exceeded` with Retry-After.
- QUOTA_MEDIA_SECONDS: the length of one upload's media. Refused (413) before anything is
  stored when its first bytes say it; written on the job (`max_media_seconds`) so that the
  converter fails a longer one otherwise.

Every refusal names the quota (`quota`), its `limit`, what is `used` or asked for, and
when it frees (`frees_at`, null when waiting does not help); nothing of the upload is kept.
Two uploads of one user that stream at the same time are each judged against what was
stored before either: together they may pass the byte quota by one upload.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerHour

from mp3common.jobs import iso, now

from . import uploads
from .errors import QuotaExceeded, TooManyJobs, UploadRefused
from .rate_counters import shared_limiter
from .settings import Settings
from .storage import Storage

STORED_BYTES, JOBS_PER_HOUR, MEDIA_SECONDS = "stored_bytes", "jobs_per_hour", "media_seconds"


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:  # pymongo's naive UTC
        return moment.replace(tzinfo=dt.UTC)
    return moment


@dataclass(frozen=True)
class Unfinished:
    """An owner's unfinished resumable uploads: the bytes they will take once complete,
    and when the first of them expires if left alone."""

    count: int = 0
    length: int = 0
    first_expiry: dt.datetime | None = None


@dataclass(frozen=True)
class _Storage:
    """One owner's byte quota as it stood before the upload."""

    owner: str
    limit: int
    files: int
    unfinished: Unfinished = Unfinished()

    @property
    def used(self) -> int:
        return self.files + self.unfinished.length

    @property
    def room(self) -> int:
        return self.limit - self.used


class Quotas:
    def __init__(self, settings: Settings, storage: Storage) -> None:
        self._settings = settings
        self._storage = storage
        self._per_hour = None
        if settings.quota_jobs_per_hour:
            self._per_hour = RateLimitItemPerHour(settings.quota_jobs_per_hour)
            self._limiter = shared_limiter(settings, "quota")

    def admit_upload(
        self, owner: str, declared: int | None, unfinished: Unfinished | None = None
    ) -> uploads.UploadLimits:
        """Before the body is read: refuse an upload past the hour's quota or the byte
        quota (`declared`, its Content-Length, when sent; `unfinished` resumable uploads
        count as if kept); else the limits it streams under."""
        if self._per_hour and not self._limiter.test(self._per_hour, "jobs", owner):
            raise self._too_many_jobs(self._per_hour, owner)
        stored = self._stored(owner, unfinished or Unfinished())
        largest = self._settings.max_upload_bytes
        if stored is not None:
            allowance = uploads.MULTIPART_ALLOWANCE_BYTES
            if stored.room <= 0 or (declared is not None and declared > stored.room + allowance):
                raise self._over_storage(stored, needed=declared)
            largest = min(largest, stored.room)
        longest = self._settings.quota_media_seconds or None
        return uploads.UploadLimits(
            max_bytes=largest,
            too_large=lambda size: self._too_large(stored, size),
            max_media_seconds=longest,
            too_long=self._too_long,
        )

    def count_job(self, owner: str) -> None:
        """Count the owner's new job against the hour's quota; TooManyJobs if it is spent
        (by uploads that ended meanwhile)."""
        if self._per_hour and not self._limiter.hit(self._per_hour, "jobs", owner):
            raise self._too_many_jobs(self._per_hour, owner)

    def close(self) -> None:
        """Close the counters' MongoDB client (tests that build many gateways)."""
        if self._per_hour:
            self._limiter.storage.close()

    def _stored(self, owner: str, unfinished: Unfinished) -> _Storage | None:
        limit = self._settings.quota_stored_bytes
        if not limit:
            return None
        return _Storage(owner, limit, self._storage.jobs.stored_bytes(owner), unfinished)

    def _too_large(self, stored: _Storage | None, size: int) -> UploadRefused:
        if stored is not None and stored.room < self._settings.max_upload_bytes:
            return self._over_storage(stored, size=size)
        return uploads.too_large(self._settings.max_upload_bytes)

    def _over_storage(self, stored: _Storage, **asked: int | None) -> QuotaExceeded:
        unfinished = stored.unfinished
        expiries = [
            moment
            for moment in (
                _aware(self._storage.jobs.next_expiry(stored.owner)),
                _aware(unfinished.first_expiry),
            )
            if moment is not None
        ]
        frees_at = min(expiries, default=None)
        when = f"on {iso(frees_at)}, when the next of them expires" if frees_at else "never"
        taken = f"Your files take {stored.files}"
        remedy = "Delete jobs you no longer need (DELETE /jobs/<fid>)"
        if unfinished.count:
            taken += (
                f" and your {unfinished.count} unfinished resumable upload(s) hold "
                f"{unfinished.length}"
            )
            remedy += (
                " or terminate unfinished uploads you will not complete (DELETE "
                f"/uploads/<fid>; left alone, the first expires on "
                f"{iso(unfinished.first_expiry)})"
            )
        return QuotaExceeded(
            "quota_exceeded",
            f"{taken} of the {stored.limit} bytes you may keep; this upload does not fit. "
            f"{remedy}; room frees {when}.",
            headers=_retry_after(frees_at),
            quota=STORED_BYTES,
            limit=stored.limit,
            used=stored.used,
            unfinished_upload_bytes=unfinished.length,
            **asked,
            frees_at=iso(frees_at),
        )

    def _too_long(self, seconds: float) -> QuotaExceeded:
        limit = self._settings.quota_media_seconds
        return QuotaExceeded(
            "quota_exceeded",
            f"The media to convert is {seconds:.0f} s long; you may convert at most "
            f"{limit:g} s per upload. Send a shorter file, or convert part of it "
            "(start, end).",
            quota=MEDIA_SECONDS,
            limit=limit,
            duration_seconds=seconds,
            frees_at=None,
        )

    def _too_many_jobs(self, item: RateLimitItem, owner: str) -> TooManyJobs:
        window = self._limiter.get_window_stats(item, "jobs", owner)
        seconds = max(1, math.ceil(window.reset_time - time.time()))
        limit = item.amount
        return TooManyJobs(
            "quota_exceeded",
            f"You have made {limit} uploads and retries in the last hour, as many as you may; "
            f"try again "
            f"in {seconds} s.",
            headers={"Retry-After": str(seconds)},
            quota=JOBS_PER_HOUR,
            limit=limit,
            used=limit - window.remaining,
            frees_at=iso(now() + dt.timedelta(seconds=seconds)),
            retry_after_seconds=seconds,
        )


def _retry_after(frees_at: dt.datetime | None) -> dict[str, str]:
    if frees_at is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil((frees_at - now()).total_seconds())))}
