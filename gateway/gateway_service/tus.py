"""Resumable uploads: the tus 1.0 protocol (core, creation, termination, expiration).

`POST /upload` takes a file in one request; a connection that drops at 90 % means starting
again, and a proxy may cut any request over its size limit (Cloudflare's is 100 MB). Here a
client creates an upload (`POST /uploads`, its length and options in the headers), sends
the bytes in as many `PATCH /uploads/<fid>` requests as it likes, each starting where the
server says the file ends (`HEAD`), and may give up (`DELETE`). The id is the future job's
fid: the GridFS id of the video.

What is stored, and why any gateway replica can take the next request:

- The record, in `tus_uploads`: owner, length, offset, options, filename, the detected
  media type, `chunks` (how many 1 MiB GridFS chunks are written) and `tail` (the bytes
  after them: less than a chunk, kept in the record so a resume at any offset works). The
  invariant is `offset == chunks * CHUNK_SIZE_BYTES + len(tail)`, written in one update
  after each chunk, so a PATCH cut anywhere leaves a record that says exactly what is kept.
- The chunks, in `videos.chunks` under the fid, the same layout as a multipart upload's;
  the files document is written only with the last byte, so until then no reader sees a
  file. A PATCH holds the memory of one chunk and one read (`READ_BYTES`), nothing more.
- A PATCH holds the upload (`patch`, a lease refreshed while bytes arrive): a second PATCH
  meanwhile gets 423 (tus clients retry), and a gateway that died mid-PATCH frees it when
  the lease runs out; chunks it wrote past the record are removed by the next PATCH.

The first `sniff.SNIFF_BYTES` (one chunk) are judged as `POST /upload` judges them before
anything becomes a chunk; not media: 415 and the upload is gone. With the last byte the
files document is written and the job made and queued by `upload_saga.queue_stored_upload`,
exactly as for `POST /upload`; the PATCH answers with the job. An upload untouched for
`TUS_UPLOAD_EXPIRY_SECONDS` expires (`Upload-Expires`): the sweep (`TusSweeper`) removes
its record and chunks, each claimed by one atomic delete so two replicas never both do.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from bson import Binary, ObjectId
from flask import Blueprint, Flask, current_app, jsonify, request, url_for
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError
from werkzeug.exceptions import ClientDisconnected, RequestTimeout
from werkzeug.http import http_date

from mp3common.http import ApiError
from mp3common.jobs import CHUNK_SIZE_BYTES, VIDEO_BUCKET, now, parse_id, public_view
from mp3common.logs import request_id
from mp3common.options import OPTION_NAMES

from . import quotas, upload_saga, uploads
from .errors import UploadRefused
from .services import services
from .sniff import SNIFF_BYTES

log = logging.getLogger(__name__)
bp = Blueprint("tus", __name__)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
COLLECTION = "tus_uploads"
#: Read size of a PATCH body: small, so the memory of a PATCH is one chunk and this.
READ_BYTES = 64 * 1024
#: How long a PATCH holds its upload without a sign of life (a chunk written, or
#: `LEASE_REFRESH_SECONDS` of reading); a gateway that died mid-PATCH frees it after this.
LEASE_SECONDS = 60.0
LEASE_REFRESH_SECONDS = 15.0
#: Metadata keys tus clients add on their own (tus-js-client, Uppy, tuspy): not options.
CLIENT_METADATA = frozenset(
    {"filename", "name", "filetype", "type", "relativepath", "contenttype", "content_type"}
)
UPLOADING, FINISHING, DONE = "uploading", "finishing", "done"


def uploads_collection(database: Database) -> Collection:
    return database[COLLECTION]


def chunks_collection(database: Database) -> Collection:
    return database[f"{VIDEO_BUCKET}.chunks"]


# --- the protocol's headers ------------------------------------------------------------------


def parse_metadata(header: str | None) -> dict[str, str]:
    """`Upload-Metadata: key base64,key2 base64,flag` → {key: text}; ApiError 400 if not."""
    metadata: dict[str, str] = {}
    for pair in (header or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        try:
            value = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ApiError(
                400,
                "invalid_metadata",
                f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 text.",
            ) from None
        metadata[key] = value
    return metadata


def _whole_number(name: str, text: str | None) -> int:
    """A header's whole number, up to int64's 18 digits; ApiError 400 if missing or not."""
    error = f"invalid_{name.lower().replace('-', '_')}"
    if text is None:
        raise ApiError(400, error, f"{name} is required: send it, a whole number of bytes.")
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ApiError(400, error, f"{name} must be a whole number.")
    return int(text)


def _upload_length(text: str | None, max_bytes: int) -> int:
    """Upload-Length: a whole number; one past int64 is a file too large, not malformed."""
    if text is not None and text.isascii() and text.isdigit() and len(text) > 18:
        raise uploads.too_large(max_bytes)
    return _whole_number("Upload-Length", text)


def _empty(status: int):
    """An answer with no body, hence no Content-Type (Flask would say text/html)."""
    response = current_app.response_class(status=status)
    del response.headers["Content-Type"]
    return response


def options_of(metadata: dict[str, str]) -> dict[str, str]:
    """The conversion options in an upload's metadata (every key a client adds by itself
    set aside), judged as POST /upload judges its form fields: 400 `invalid_option`."""
    fields = {key: value for key, value in metadata.items() if key.lower() not in CLIENT_METADATA}
    uploads.judge_options(fields)
    return {key: value for key, value in fields.items() if key in OPTION_NAMES}


@bp.after_request
def _tus_headers(response):
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    return response


def _check_version() -> None:
    """Every request but OPTIONS names the protocol version it speaks (tus 1.0, core).
    Asked after the token and the headers' own form, so that what is malformed is told
    as such (401, 400) before a missing version is."""
    version = request.headers.get("Tus-Resumable")
    if version != TUS_VERSION:
        raise ApiError(
            412,
            "unsupported_tus_version",
            f"Send Tus-Resumable: {TUS_VERSION}, the one version this server speaks.",
            headers={"Tus-Version": TUS_VERSION},
        )


def _expires_header(record: dict[str, Any]) -> dict[str, str]:
    expires = record.get("expires_at")
    if expires is None:
        return {}
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    return {"Upload-Expires": http_date(expires)}


# --- the record --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """One `tus_uploads` record, as the views need it."""

    fid: ObjectId
    owner: str
    length: int
    offset: int
    chunks: int
    tail: bytes
    filename: str
    options: dict[str, str]
    content_type: str | None
    state: str
    raw: dict[str, Any]

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Upload:
        return cls(
            fid=document["_id"],
            owner=document["owner"],
            length=document["length"],
            offset=document["offset"],
            chunks=document["chunks"],
            tail=bytes(document.get("tail") or b""),
            filename=document["filename"],
            options=dict(document.get("options") or {}),
            content_type=document.get("content_type"),
            state=document["state"],
            raw=document,
        )


def _database() -> Database:
    return services().storage.gridfs_database


def _owned(fid_text: str, owner: str) -> dict[str, Any]:
    fid = parse_id(fid_text)
    document = (
        uploads_collection(_database()).find_one({"_id": fid, "owner": owner}) if fid else None
    )
    if document is None or _expired(document):
        raise ApiError(404, "not_found", "You have no upload with that id.")
    return document


def _expired(document: dict[str, Any]) -> bool:
    """Past its `expires_at`: gone for its owner at once, whenever the sweep removes it."""
    expires = document.get("expires_at")
    if expires is None:
        return False
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    return expires <= now()


def _owner() -> str:
    return services().auth.user_for(request.headers.get("Authorization"))


def _expiry() -> dt.datetime:
    return now() + dt.timedelta(seconds=current_app.config["SETTINGS"].tus_upload_expiry_seconds)


def unfinished_uploads(database: Database, owner: str) -> quotas.Unfinished:
    """The owner's unfinished uploads, as the byte quota counts them: what they will take
    once complete, and when the first expires."""
    found = uploads_collection(database).find(
        {"owner": owner, "state": UPLOADING}, projection={"length": 1, "expires_at": 1}
    )
    live = [document for document in found if not _expired(document)]
    expiries = [document["expires_at"] for document in live if document.get("expires_at")]
    return quotas.Unfinished(
        count=len(live),
        length=sum(document["length"] for document in live),
        first_expiry=min(expiries, default=None),
    )


def discard(database: Database, fid: ObjectId) -> None:
    """Remove an upload's chunks and record (termination, refusal, expiry)."""
    chunks_collection(database).delete_many({"files_id": fid})
    uploads_collection(database).delete_one({"_id": fid})


# --- the routes ----------------------------------------------------------------------------------


@bp.route("/uploads", methods=["OPTIONS"], provide_automatic_options=False)
def tus_options():
    """What this server speaks: tus 1.0 with creation, termination and expiration."""
    settings = current_app.config["SETTINGS"]
    response = _empty(204)
    response.headers.update(
        {
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(settings.max_upload_bytes),
        }
    )
    return response


@bp.post("/uploads")
def create_upload():
    """Creation: an empty upload of Upload-Length bytes, its options in Upload-Metadata."""
    owner = _owner()
    settings = current_app.config["SETTINGS"]
    if request.headers.get("Upload-Defer-Length"):
        raise ApiError(
            400,
            "length_required",
            "Send Upload-Length: this server does not take uploads of unknown length.",
        )
    length = _upload_length(request.headers.get("Upload-Length"), settings.max_upload_bytes)
    _check_version()
    if length > settings.max_upload_bytes:
        raise uploads.too_large(settings.max_upload_bytes)
    if length == 0:
        raise ApiError(400, "empty_file", "The file is empty; send a video.")
    metadata = parse_metadata(request.headers.get("Upload-Metadata"))
    options = options_of(metadata)
    # The quotas, as POST /upload asks them before its body: the hour's uploads, the
    # bytes kept (the whole length is known now, and the owner's unfinished uploads count
    # as if they were kept), and the media length to judge on the first bytes.
    limits = services().quotas.admit_upload(owner, length, unfinished_uploads(_database(), owner))
    if length > limits.max_bytes:
        raise limits.too_large(length)
    filename = uploads.clean_filename(metadata.get("filename") or metadata.get("name"))
    fid = ObjectId()
    document = {
        "_id": fid,
        "owner": owner,
        "length": length,
        "offset": 0,
        "chunks": 0,
        "tail": Binary(b""),
        "filename": filename,
        "options": options,
        "max_media_seconds": limits.max_media_seconds,
        "content_type": None,
        "state": UPLOADING,
        "patch": None,
        "request_id": request_id.get(),
        "created_at": now(),
        "updated_at": now(),
        "expires_at": _expiry(),
    }
    uploads_collection(_database()).insert_one(document)
    log.info("upload %s created: %d bytes, %s, options %s", fid, length, filename, options)
    response = _empty(201)
    response.headers["Location"] = url_for("tus.upload_offset", fid=str(fid))
    response.headers["Upload-Offset"] = "0"
    response.headers.update(_expires_header(document))
    return response


@bp.route("/uploads/<fid>", methods=["HEAD"])
def upload_offset(fid: str):
    """Where the upload stands: how many bytes the server has (resume from there)."""
    owner = _owner()
    _check_version()
    upload = Upload.from_document(_owned(fid, owner))
    response = _empty(200)
    response.headers["Upload-Offset"] = str(upload.offset)
    response.headers["Upload-Length"] = str(upload.length)
    if upload.state == DONE:
        response.headers["Upload-Job"] = str(upload.fid)
    else:
        response.headers.update(_expires_header(upload.raw))
    return response


@bp.route("/uploads/<fid>", methods=["DELETE"])
def terminate_upload(fid: str):
    """Termination: the upload and every byte of it are removed."""
    owner = _owner()
    _check_version()
    document = _owned(fid, owner)
    database = _database()
    # A PATCH that holds the upload is writing chunks: removing the record under it would
    # leave them behind, so termination waits for its lease as a second PATCH does.
    claimed = uploads_collection(database).find_one_and_delete(
        {"_id": document["_id"], "state": UPLOADING, **_free_of_patches(now())}
    )
    if claimed is None:
        current = uploads_collection(database).find_one({"_id": document["_id"]})
        if current is None:
            raise ApiError(404, "not_found", "You have no upload with that id.")
        if current["state"] == UPLOADING:
            raise _busy()
        raise ApiError(
            409,
            "upload_finished",
            "This upload is complete and is a job now; delete the job with "
            f"DELETE /jobs/{fid} instead.",
        )
    chunks_collection(database).delete_many({"files_id": document["_id"]})
    log.info("upload %s terminated by its owner at %d bytes", fid, document["offset"])
    return _empty(204)


@bp.route("/uploads/<fid>", methods=["PATCH"])
def patch_upload(fid: str):
    """Core: the bytes from Upload-Offset on; the last byte makes the job."""
    owner = _owner()
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/offset+octet-stream":
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the bytes of a PATCH as Content-Type: application/offset+octet-stream.",
        )
    offset = _whole_number("Upload-Offset", request.headers.get("Upload-Offset"))
    _check_version()
    document = _owned(fid, owner)
    database = _database()
    if document["state"] != UPLOADING:
        return _finished_answer(document, offset)
    if offset != document["offset"]:
        raise _offset_conflict(document["offset"], offset)
    declared = request.content_length
    if declared is not None and offset + declared > document["length"]:
        raise _past_length(document["length"], start=offset)
    writer = PatchWriter.claim(database, document, lease_seconds=LEASE_SECONDS)
    if writer is None:
        current = uploads_collection(database).find_one({"_id": document["_id"]})
        if current is not None and current["state"] != UPLOADING:
            return _finished_answer(current, offset)
        if current is not None and current["offset"] != offset:
            raise _offset_conflict(current["offset"], offset)
        raise _busy()
    ffmpeg = current_app.config["SETTINGS"].ffmpeg_binary
    try:
        while writer.offset < writer.length:
            data = request.stream.read(min(READ_BYTES, writer.length - writer.offset))
            if not data:
                break
            writer.write(data, ffmpeg=ffmpeg)
        too_long = bool(request.stream.read(1))
    except UploadRefused as exc:
        discard(database, writer.fid)
        log.info("upload %s refused on its first bytes: %s", fid, exc.code)
        raise
    except (ClientDisconnected, RequestTimeout):
        writer.save_quietly()
        log.info("upload %s: the client went away at %d bytes (kept)", fid, writer.offset)
        raise
    except BaseException:
        writer.save_quietly()
        raise
    if too_long:
        # Known only now for a body without Content-Length: as for one that declares too
        # much, nothing of this PATCH is kept.
        writer.undo()
        raise _past_length(writer.length, start=offset)
    writer.save()
    if writer.offset < writer.length:
        response = _empty(204)
        response.headers["Upload-Offset"] = str(writer.offset)
        response.headers.update(_expires_header({"expires_at": writer.expires_at}))
        return response
    return _complete(database, writer.fid, writer.length)


def _past_length(length: int, *, start: int) -> ApiError:
    return ApiError(
        413,
        "past_upload_length",
        f"The body goes past the upload's length ({length} bytes); nothing of it was kept. "
        f"Send at most {length - start} bytes from offset {start}.",
        headers={"Upload-Offset": str(start)},
    )


def _free_of_patches(moment: dt.datetime) -> dict[str, Any]:
    """The filter of a record no live PATCH holds."""
    return {"$or": [{"patch": None}, {"patch.until": {"$lt": moment}}]}


def _busy() -> ApiError:
    return ApiError(
        423,
        "upload_busy",
        "Another request is sending bytes to this upload; ask HEAD for its offset and "
        "go on from there in a moment.",
        headers={"Retry-After": "1"},
    )


def _offset_conflict(server_offset: int, client_offset: int) -> ApiError:
    return ApiError(
        409,
        "offset_mismatch",
        f"The upload is at byte {server_offset}, not {client_offset}; ask HEAD for the "
        "offset and send the bytes from there.",
        headers={"Upload-Offset": str(server_offset)},
        offset=server_offset,
    )


def _finished_answer(document: dict[str, Any], offset: int):
    """A PATCH to a complete upload: its job, when it is the last piece sent again (its
    answer was lost: Upload-Offset + its length == Upload-Length); nothing is stored."""
    repeated = (
        document["state"] == DONE
        and offset <= document["length"]
        and offset + _body_length(document["length"] - offset) == document["length"]
    )
    if not repeated:
        raise ApiError(
            409,
            "upload_finished",
            "This upload is complete; it is the job with the same fid.",
            headers={"Upload-Offset": str(document["offset"])},
        )
    return _job_answer(document["_id"])


def _body_length(expected: int) -> int:
    """The PATCH body's length: its Content-Length, else the bytes of a chunked body
    counted (not kept) up to one past `expected`."""
    if request.content_length is not None:
        return request.content_length
    counted = 0
    while counted <= expected:
        data = request.stream.read(min(READ_BYTES, expected + 1 - counted))
        if not data:
            break
        counted += len(data)
    return counted


def _job_answer(fid: ObjectId):
    job = services().storage.jobs.get(fid)
    if job is None:
        raise ApiError(404, "not_found", "This upload's job is gone (deleted or expired).")
    view = {
        **public_view(job),
        "status_url": url_for("gateway.status", fid=str(fid)),
        "job_url": url_for("gateway.job", fid=str(fid)),
        "download_url": url_for("gateway.download", fid=str(fid)),
    }
    response = jsonify(view)
    response.status_code = 200
    response.headers["Upload-Offset"] = str(job.size)
    response.headers["Upload-Job"] = str(fid)
    response.headers["Content-Location"] = view["status_url"]
    return response


def _complete(database: Database, fid: ObjectId, length: int):
    """The last byte is in: write the file, then the job as POST /upload does."""
    claimed = uploads_collection(database).find_one_and_update(
        {"_id": fid, "state": UPLOADING, "offset": length},
        {"$set": {"state": FINISHING, "updated_at": now()}},
        return_document=ReturnDocument.AFTER,
    )
    if claimed is None:  # another request finished it meanwhile
        return _job_answer(fid)
    upload = Upload.from_document(claimed)
    if upload.tail:
        chunks_collection(database).replace_one(
            {"files_id": fid, "n": upload.chunks},
            {"files_id": fid, "n": upload.chunks, "data": Binary(upload.tail)},
            upsert=True,
        )
    database[f"{VIDEO_BUCKET}.files"].insert_one(
        {
            "_id": fid,
            "chunkSize": CHUNK_SIZE_BYTES,
            "filename": upload.filename,
            "length": upload.length,
            "uploadDate": now(),
            "metadata": {"owner": upload.owner, "content_type": upload.content_type},
        }
    )
    options, notes = uploads.judge_options(upload.options)
    stored = uploads.StoredUpload(
        fid, upload.filename, upload.length, upload.content_type or "", options, notes
    )
    owner_quotas = services().quotas
    try:
        upload_saga.queue_stored_upload(
            stored,
            owner=upload.owner,
            max_media_seconds=claimed.get("max_media_seconds"),
            request_id=claimed.get("request_id") or request_id.get(),
            storage=services().storage,
            publisher=services().publisher,
            admit=lambda: owner_quotas.count_job(upload.owner),
        )
    except BaseException:
        # queue_stored_upload removed the file and the job: the upload goes with them.
        uploads_collection(database).delete_one({"_id": fid})
        raise
    uploads_collection(database).update_one(
        {"_id": fid},
        {
            "$set": {
                "state": DONE,
                "tail": Binary(b""),
                "updated_at": now(),
                "expires_at": _expiry(),
            }
        },
    )
    log.info("upload %s complete (%d bytes): queued as a job", fid, upload.length)
    return _job_answer(fid)


# --- writing a PATCH's bytes ---------------------------------------------------------------


class PatchWriter:
    """The bytes of one PATCH into an upload it holds (see the module docstring)."""

    def __init__(self, database: Database, document: dict[str, Any], token: str) -> None:
        self.database = database
        self.uploads = uploads_collection(database)
        self.chunks = chunks_collection(database)
        self.document = document
        self.fid: ObjectId = document["_id"]
        self.length: int = document["length"]
        self.offset: int = document["offset"]
        self.chunk_count: int = document["chunks"]
        self.buffer = bytearray(bytes(document.get("tail") or b""))
        self.content_type: str | None = document.get("content_type")
        self.token = token
        self.expires_at: dt.datetime | None = document.get("expires_at")
        self._refreshed = time.monotonic()
        self._saved_offset = self.offset

    @classmethod
    def claim(
        cls, database: Database, document: dict[str, Any], *, lease_seconds: float
    ) -> PatchWriter | None:
        """Hold the upload at its current offset for this PATCH; None when another holds it
        (or it moved or finished meanwhile)."""
        token = secrets.token_hex(8)
        moment = now()
        claimed = uploads_collection(database).find_one_and_update(
            {
                "_id": document["_id"],
                "state": UPLOADING,
                "offset": document["offset"],
                "expires_at": {"$gt": moment},
                **_free_of_patches(moment),
            },
            {
                "$set": {
                    "patch": {
                        "by": token,
                        "until": moment + dt.timedelta(seconds=lease_seconds),
                    }
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if claimed is None:
            return None
        writer = cls(database, claimed, token)
        # Chunks past the record: written by a PATCH whose gateway died before its update.
        writer.chunks.delete_many({"files_id": writer.fid, "n": {"$gte": writer.chunk_count}})
        return writer

    def write(self, data: bytes, *, ffmpeg: str) -> None:
        self.buffer += data
        self.offset += len(data)
        if self.content_type is None:
            needed = min(SNIFF_BYTES, self.length)
            if len(self.buffer) < needed:
                self._keep_alive()
                return
            found = uploads.media_of(bytes(self.buffer[:SNIFF_BYTES]), ffmpeg=ffmpeg)
            if self.document.get("max_media_seconds") and found.duration_seconds:
                limits = services().quotas.admit_upload(self.document["owner"], None)
                options = self.document.get("options") or {}
                uploads.check_media_length(limits, options, found.duration_seconds)
            self.content_type = found.content_type
        while len(self.buffer) >= CHUNK_SIZE_BYTES:
            data = bytes(self.buffer[:CHUNK_SIZE_BYTES])
            del self.buffer[:CHUNK_SIZE_BYTES]
            self.chunks.replace_one(
                {"files_id": self.fid, "n": self.chunk_count},
                {"files_id": self.fid, "n": self.chunk_count, "data": Binary(data)},
                upsert=True,
            )
            self.chunk_count += 1
            self._record(holding=True)
        self._keep_alive()

    def _keep_alive(self) -> None:
        if time.monotonic() - self._refreshed > LEASE_REFRESH_SECONDS:
            self._record(holding=True)

    def _record(self, *, holding: bool) -> None:
        """Write the record as it stands: offset, chunks, tail, and the lease (kept while
        `holding`, else given up). ApiError 409 if the lease was lost meanwhile."""
        moment = now()
        self.expires_at = moment + dt.timedelta(
            seconds=current_app.config["SETTINGS"].tus_upload_expiry_seconds
        )
        patch = {"by": self.token, "until": moment + dt.timedelta(seconds=LEASE_SECONDS)}
        result = self.uploads.update_one(
            {"_id": self.fid, "patch.by": self.token},
            {
                "$set": {
                    "offset": self.chunk_count * CHUNK_SIZE_BYTES + len(self.buffer),
                    "chunks": self.chunk_count,
                    "tail": Binary(bytes(self.buffer)),
                    "content_type": self.content_type,
                    "patch": patch if holding else None,
                    "updated_at": moment,
                    "expires_at": self.expires_at,
                }
            },
        )
        self._refreshed = time.monotonic()
        if result.matched_count != 1:
            self._drop_orphaned_chunks()
            raise ApiError(
                409,
                "upload_taken_over",
                "This request paused so long that another one took the upload over; ask "
                "HEAD for the offset and go on from there.",
            )
        self._saved_offset = self.offset

    def _drop_orphaned_chunks(self) -> None:
        """The lease was lost: if the record went too (terminated or swept meanwhile), the
        chunks this PATCH wrote belong to nothing and no later PATCH would remove them.
        A files document means the upload became a job's file: its chunks stay."""
        if self.uploads.find_one({"_id": self.fid}, {"_id": 1}) is not None:
            return  # another PATCH holds it: its claim removed chunks past the record
        if self.database[f"{VIDEO_BUCKET}.files"].find_one({"_id": self.fid}, {"_id": 1}):
            return
        removed = self.chunks.delete_many({"files_id": self.fid}).deleted_count
        log.info(
            "upload %s was removed under a PATCH: %d chunks it left removed", self.fid, removed
        )

    def undo(self) -> None:
        """Let go of the upload as this PATCH found it: the record first (so it never
        claims a chunk that is gone), then the chunks this PATCH wrote past it."""
        original = self.document
        result = self.uploads.update_one(
            {"_id": self.fid, "patch.by": self.token},
            {
                "$set": {
                    "offset": original["offset"],
                    "chunks": original["chunks"],
                    "tail": Binary(bytes(original.get("tail") or b"")),
                    "content_type": original.get("content_type"),
                    "patch": None,
                    "updated_at": now(),
                }
            },
        )
        if result.matched_count != 1:
            self._drop_orphaned_chunks()
            return
        self.chunks.delete_many({"files_id": self.fid, "n": {"$gte": original["chunks"]}})

    def save(self) -> None:
        """Keep every byte received and let go of the upload."""
        self._record(holding=False)

    def save_quietly(self) -> None:
        """save() on the way out of a broken request: its own error is what counts."""
        try:
            self.save()
        except (PyMongoError, ApiError, RuntimeError):
            log.warning("upload %s: what a broken PATCH brought was not saved", self.fid)


# --- expiration ------------------------------------------------------------------------------


def remove_expired_uploads(database: Database) -> int:
    """Remove every upload past its `expires_at` that no PATCH holds; how many unfinished
    ones were removed.

    An unfinished one goes with its chunks; a finished one's record only (its job owns the
    file now). One whose gateway died while making its job (`finishing`) goes with its
    file too, unless the job was made. Each is claimed by one atomic delete, so two
    sweepers never share one.
    """
    removed = 0
    while True:
        moment = now()
        document = uploads_collection(database).find_one_and_delete(
            {
                "expires_at": {"$lt": moment},
                "state": {"$in": [UPLOADING, FINISHING, DONE]},
                **_free_of_patches(moment),
            }
        )
        if document is None:
            return removed
        fid = document["_id"]
        if document["state"] == DONE:
            continue
        if document["state"] == FINISHING:
            if database["jobs"].find_one({"_id": fid}, {"_id": 1}) is not None:
                continue
            database[f"{VIDEO_BUCKET}.files"].delete_one({"_id": fid})
        chunks = chunks_collection(database).delete_many({"files_id": fid})
        log.info(
            "upload %s expired at %d of %d bytes (%s): %d chunks removed",
            fid,
            document["offset"],
            document["length"],
            document["state"],
            chunks.deleted_count,
        )
        removed += 1


class TusSweeper(threading.Thread):
    """Every `interval_seconds`, in the background of a gateway process:
    `remove_expired_uploads`."""

    def __init__(self, app: Flask, interval_seconds: float) -> None:
        super().__init__(name="tus-expiry", daemon=True)
        self._app = app
        self._interval = interval_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self._interval):
            try:
                with self._app.app_context():
                    remove_expired_uploads(services().storage.gridfs_database)
            except PyMongoError as exc:
                log.warning("tus expiry sweep skipped a round: MongoDB unavailable (%s)", exc)


@bp.record_once
def _start_sweeper(state) -> None:
    interval = state.app.config["SETTINGS"].tus_expiry_sweep_seconds
    if interval > 0:
        TusSweeper(state.app, interval).start()
