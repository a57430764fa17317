"""A multipart upload streamed from the socket into GridFS, checked on the way.

Nothing holds the whole file: the body is read in small pieces, parsed by Werkzeug's
incremental multipart decoder, and each piece of the file part is written to GridFS in
1 MiB chunks while the next piece is read (gridfs_writer). The first bytes are held back until they
show a video or audio container, so a refused file never reaches MongoDB. Whatever goes
wrong before the end (too large, a second file, the client hanging up, MongoDB failing)
aborts the GridFS stream, which removes the chunks already written: no orphan is left.

The other form fields are the conversion options (mp3common.options). Those sent before
the file are judged when the file begins, before any of it is stored; the whole set is
judged again at the end, so a bad one sent after the file aborts what was stored.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import PyMongoError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Field, File, MultipartDecoder, NeedData, State

from mp3common.options import DEFAULT_OPTIONS, ConversionOptions, InvalidOption, parse_options

from .errors import InvalidUploadOption, NotMedia, UploadRefused, UploadTooLarge
from .gridfs_writer import GridFSUpload
from .sniff import SNIFF_BYTES, Sniffed, sniff

log = logging.getLogger(__name__)

FILE_FIELD = "file"
#: Read size: small enough to keep the decoder's buffer small, large enough to be cheap.
READ_BYTES = 64 * 1024
#: Part headers, preamble and plain form fields are tiny; more is not a real form.
MAX_FORM_OVERHEAD_BYTES = 64 * 1024
#: Multipart's own bytes around the file (boundaries, part headers, the options): allowed
#: on top of a size limit when judging a request by its Content-Length before reading it.
MULTIPART_ALLOWANCE_BYTES = MAX_FORM_OVERHEAD_BYTES
_CURL_HINT = "Send the video as multipart form field 'file': curl -F file=@video.mp4 …"


@dataclass(frozen=True)
class StoredUpload:
    fid: ObjectId
    filename: str
    size: int
    content_type: str
    options: ConversionOptions = DEFAULT_OPTIONS
    #: What the owner should know about the options (one ignored, and why).
    notes: list[str] = field(default_factory=list)
    #: The media's length, when its first bytes said it.
    duration_seconds: float | None = None


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may be, and the refusal for each limit (the caller words them: a
    size may be the upload limit's or its owner's storage quota's)."""

    max_bytes: int
    #: The refusal of a file that has reached this size past `max_bytes`.
    too_large: Callable[[int], UploadRefused]
    #: The longest media taken, in seconds (None: any), judged on the first bytes.
    max_media_seconds: float | None = None
    too_long: Callable[[float], UploadRefused] | None = None


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of the request; UploadRefused saying how to send a file."""
    mimetype, options = parse_options_header(content_type or "")
    boundary = options.get("boundary", "")
    if mimetype != "multipart/form-data" or not boundary:
        raise UploadRefused("not_multipart", f"The body is not a multipart form. {_CURL_HINT}")
    try:
        return boundary.encode("latin-1")
    except UnicodeEncodeError:
        raise UploadRefused("not_multipart", "The multipart boundary is not valid.") from None


#: Unicode categories a name never keeps: control and format characters, line and
#: paragraph separators (in a mail header they would end the line), unassigned ones.
_NOT_IN_NAMES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def clean_filename(raw: str | None) -> str:
    """The file's own name, as a name to show and reuse, not a path to trust."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        ch
        for ch in name
        if unicodedata.category(ch)[0] != "C" and unicodedata.category(ch) not in ("Zl", "Zp")
    ).strip()
    return name[:255] or "upload"


def too_large(max_bytes: int) -> UploadTooLarge:
    return UploadTooLarge(
        "file_too_large",
        f"The file is larger than the limit of {max_bytes} bytes; send a smaller file.",
        max_bytes=max_bytes,
    )


def invalid_option(exc: InvalidOption) -> InvalidUploadOption:
    return InvalidUploadOption(
        "invalid_option", exc.message, option=exc.option, allowed=exc.allowed
    )


def judge_options(fields: dict[str, str]) -> tuple[ConversionOptions, list[str]]:
    """The options in the form's `fields`, and their notes; InvalidUploadOption if not."""
    try:
        return parse_options(fields)
    except InvalidOption as exc:
        raise invalid_option(exc) from None


def media_of(head: bytes, *, ffmpeg: str) -> Sniffed:
    """What the upload's first bytes say (sniff.py); NotMedia when they are not a video
    or audio file. Both ways to upload (this form, tus.py) refuse with these words."""
    found = sniff(head, ffmpeg=ffmpeg)
    if found is None:
        raise NotMedia(
            "unsupported_media_type",
            "The file is not a video or audio file (judged by its content, not its "
            "name); send a video such as MP4, MKV, WebM, MOV or AVI.",
        )
    return found


def check_media_length(
    limits: UploadLimits, fields: dict[str, str], duration: float | None
) -> None:
    """Refuse (limits.too_long) media whose part to convert, judged by the options known so
    far (a trim counts), is longer than the owner's quota, when its length is known."""
    longest = limits.max_media_seconds
    if not longest or limits.too_long is None or duration is None:
        return
    options, _ = judge_options(_known_before_the_file(fields))
    seconds = options.span(duration)
    if seconds is not None and seconds > longest:
        raise limits.too_long(seconds)


def _known_before_the_file(fields: dict[str, str]) -> dict[str, str]:
    """The fields that can be judged before those after the file are known: a quality
    depends on the format, which may still come."""
    if "format" in fields:
        return fields
    return {name: value for name, value in fields.items() if name != "quality"}


class _Receiver:
    """The state of one upload while its body is parsed (one part at a time)."""

    def __init__(
        self,
        fid: ObjectId,
        database: Database,
        bucket: str,
        owner: str,
        limits: UploadLimits,
        ffmpeg: str,
    ) -> None:
        self.fid = fid
        self.ffmpeg = ffmpeg
        self.database = database
        self.bucket = bucket
        self.owner = owner
        self.limits = limits
        self.in_file = False
        self.files_seen = 0
        self.filename = "upload"
        self.size = 0
        self.head = bytearray()
        self.content_type: str | None = None
        self.duration_seconds: float | None = None
        self.stored_file: GridFSUpload | None = None
        self.form_bytes = 0
        #: The form fields beside the file (the options), and the one being read.
        self.fields: dict[str, str] = {}
        self.field_name: str | None = None
        self.field_value = bytearray()

    def on_part(self, event: Field | File) -> None:
        # A part named `file` is the file even without a filename (some clients send
        # none); its name then defaults to "upload" (clean_filename).
        self.in_file = isinstance(event, File) or event.name == FILE_FIELD
        if not self.in_file:
            self._begin_field(event.name)
            return
        if event.name != FILE_FIELD:
            raise UploadRefused(
                "unexpected_file", f"A file came in field {event.name!r}. {_CURL_HINT}"
            )
        self.files_seen += 1
        if self.files_seen > 1:
            raise UploadRefused("too_many_files", "Send exactly one file per upload.")
        self.filename = clean_filename(getattr(event, "filename", None))
        judge_options(_known_before_the_file(self.fields))

    def _begin_field(self, name: str) -> None:
        if name in self.fields:
            raise invalid_option(
                InvalidOption(name, f"{name} is given more than once; send it once.")
            )
        self.field_name, self.field_value = name, bytearray()

    def on_data(self, data: bytes, more: bool) -> None:
        if not self.in_file:
            self._on_field_data(data, more)
            return
        self.size += len(data)
        if self.size > self.limits.max_bytes:
            raise self.limits.too_large(self.size)
        if self.stored_file is not None:
            self.stored_file.write(data)
        else:
            self.head += data
            if len(self.head) >= SNIFF_BYTES:
                self._start_storing()
        if not more:
            self.in_file = False
            if self.size == 0:
                raise UploadRefused("empty_file", "The file is empty; send a video.")
            if self.stored_file is None:
                self._start_storing()

    def _on_field_data(self, data: bytes, more: bool) -> None:
        self.form_bytes += len(data)
        if self.form_bytes > MAX_FORM_OVERHEAD_BYTES:
            raise UploadRefused("malformed_upload", f"The form is too large. {_CURL_HINT}")
        self.field_value += data
        if not more and self.field_name is not None:
            self.fields[self.field_name] = self.field_value.decode("utf-8", "replace")
            self.field_name = None

    def _start_storing(self) -> None:
        found = media_of(bytes(self.head), ffmpeg=self.ffmpeg)
        self.content_type, self.duration_seconds = found.content_type, found.duration_seconds
        check_media_length(self.limits, self.fields, found.duration_seconds)
        self.stored_file = GridFSUpload(
            self.database,
            self.bucket,
            self.fid,
            self.filename,
            {"owner": self.owner, "content_type": self.content_type},
        )
        self.stored_file.write(bytes(self.head))
        self.head = bytearray()

    def finish(self) -> StoredUpload:
        if self.files_seen == 0:
            raise UploadRefused("missing_file", f"No file in the upload. {_CURL_HINT}")
        if self.stored_file is None or self.in_file:
            raise UploadRefused("malformed_upload", f"The upload is incomplete. {_CURL_HINT}")
        options, notes = judge_options(self.fields)
        self.stored_file.close()
        return StoredUpload(
            self.fid,
            self.filename,
            self.size,
            self.content_type or "",
            options,
            notes,
            self.duration_seconds,
        )

    def abort(self) -> None:
        if self.stored_file is None:
            return
        try:
            self.stored_file.abort()
        except PyMongoError:
            log.exception("could not remove the partial upload %s; it is an orphan now", self.fid)


def store_upload(
    body: BinaryIO,
    boundary: bytes,
    *,
    fid: ObjectId,
    database: Database,
    bucket: str,
    owner: str,
    limits: UploadLimits,
    ffmpeg: str,
) -> StoredUpload:
    """Parse the multipart `body` and store its one file in GridFS `bucket` under `fid`,
    with the options in its other fields; `ffmpeg` judges whether it is media (sniff.py)."""
    receiver = _Receiver(fid, database, bucket, owner, limits, ffmpeg)
    decoder = MultipartDecoder(boundary)
    received = 0
    try:
        while decoder.state not in (State.EPILOGUE, State.COMPLETE):
            data = body.read(READ_BYTES)
            if not data and not received:
                raise UploadRefused("missing_file", f"The body is empty. {_CURL_HINT}")
            received += len(data)
            decoder.receive_data(data or None)
            _drain(decoder, receiver)
            if not data:
                break
        return receiver.finish()
    except BaseException:
        receiver.abort()
        raise


def _drain(decoder: MultipartDecoder, receiver: _Receiver) -> None:
    """Hand every event the decoder can produce from what it has to the receiver."""
    while decoder.state not in (State.EPILOGUE, State.COMPLETE):
        if decoder.state in (State.PREAMBLE, State.PART):
            if len(decoder.buffer) > MAX_FORM_OVERHEAD_BYTES:
                raise UploadRefused("malformed_upload", f"No form part found. {_CURL_HINT}")
        try:
            event = decoder.next_event()
        except (ValueError, UnicodeDecodeError, RequestEntityTooLarge):
            raise UploadRefused(
                "malformed_upload", f"The multipart body is malformed. {_CURL_HINT}"
            ) from None
        if isinstance(event, (Field, File)):
            receiver.on_part(event)
        elif isinstance(event, Data):
            receiver.on_data(event.data, event.more_data)
        elif isinstance(event, NeedData):
            return
