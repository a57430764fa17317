"""What can go wrong below the views, in the gateway's own words; the views say it in HTTP.

Each error carries a stable `code` (snake_case, for programs: the JSON body's `error`), a
`message` that tells a person what to do, and `detail` (more JSON fields). `views` maps
each to its HTTP status; nothing below the views knows about statuses.
"""

from __future__ import annotations


class GatewayError(Exception):
    def __init__(
        self, code: str, message: str, *, headers: dict[str, str] | None = None, **detail: object
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.detail = detail


class NotAuthenticated(GatewayError):
    """No token, or one the auth service refused (its own code and reason are kept)."""


class AuthUnavailable(GatewayError):
    """The auth service did not answer, or not sensibly."""


class UploadRefused(GatewayError):
    """The upload cannot be taken as it was sent; nothing of it was kept."""


class UploadTooLarge(UploadRefused):
    """The file is larger than MAX_UPLOAD_BYTES (`detail["max_bytes"]`)."""


class NotMedia(UploadRefused):
    """The file's content is not a video or audio container."""


class InvalidUploadOption(UploadRefused):
    """A form field beside the file that the options' catalog does not allow (`option`
    names it, `allowed` says what would do)."""


class QuotaExceeded(UploadRefused):
    """The upload would take its owner past a quota (`quota` names it; `limit`, `used` and
    `frees_at` say the numbers and when it frees)."""


class TooManyJobs(UploadRefused):
    """The owner has made QUOTA_JOBS_PER_HOUR uploads in the last hour (a quota too, but
    one that frees with time: `Retry-After`)."""


class UploadExpired(UploadRefused):
    """The body paused for so long that the upload was taken for an abandoned one and
    its chunks removed (orphans.py); it can only be sent again."""


class QueueUnavailable(GatewayError):
    """The broker did not take the job; the upload was undone, so trying again is safe."""


class JobConflict(GatewayError):
    """The job is not in a state the action applies to (`state` says which it is in)."""


class JobGone(GatewayError):
    """What the action needs of the job has expired or is gone (`expired_at`)."""
