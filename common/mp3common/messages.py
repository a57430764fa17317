"""The two messages between the services, as types: their JSON shape is declared here.

Both are JSON objects, published persistently with the request's `x-request-id` header.
The reference's fields (`video_fid`, `mp3_fid`, `username`) keep their names; they are the
job's id (a 24-hex-digit ObjectId), its MP3's id and its owner. A consumer reads a message
with `parse`, which turns a body that does not fit into a `PermanentError` (dead-lettered
at once: trying it again cannot help).

`video` (gateway → converter)::

    {"video_fid": "6571…", "mp3_fid": null, "username": "ann@example.com",
     "filename": "holiday.mp4", "format": "mp3"}

`mp3` (converter → notifier; a finished job, converted or failed)::

    {"video_fid": "6571…", "mp3_fid": "6571…" | null, "username": "ann@example.com",
     "filename": "holiday.mp4", "format": "mp3", "state": "done" | "failed",
     "reason": null | "why"}

`format` (the output format, mp3common.options) was added later; a message without it
means mp3. `mp3_fid` is the output's id whatever its format (the reference's name).

The converter and the notifier read the job itself for everything else: the message says
which job, and the job is the truth.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .amqp import PermanentError
from .jobs import Job

#: An ObjectId as JSON carries it.
HexId = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{24}$")]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    video_fid: HexId
    username: str | None = None
    filename: str | None = None
    #: The output format asked for (mp3common.options; added later: absent means mp3).
    format: str = "mp3"

    @property
    def job_id(self) -> ObjectId:
        return ObjectId(self.video_fid)

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Self:
        """The message in a decoded body; PermanentError if it does not fit the shape."""
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise PermanentError(f"not a {cls.__name__}: {problems}") from None

    def body(self) -> dict[str, Any]:
        """JSON-ready, every field present."""
        return self.model_dump(mode="json")


class VideoMessage(_Message):
    """A job to convert, on the `video` queue."""

    #: Always null: the reference's message had the field before there was an MP3.
    mp3_fid: None = None

    @classmethod
    def for_job(cls, job: Job) -> Self:
        return cls(
            video_fid=str(job.id),
            username=job.owner,
            filename=job.filename,
            format=job.options.format,
        )


class Mp3Message(_Message):
    """A finished job to tell its owner about, on the `mp3` queue."""

    state: Literal["done", "failed"]
    mp3_fid: HexId | None = None
    reason: str | None = None

    @classmethod
    def for_job(cls, job: Job) -> Self:
        return cls(
            video_fid=str(job.id),
            mp3_fid=str(job.mp3_fid) if job.mp3_fid else None,
            username=job.owner,
            filename=job.filename,
            format=job.options.format,
            state=job.state.value,
            reason=job.reason,
        )
