"""The resumable uploads (tus.py) in the OpenAPI document: /uploads and /uploads/{fid}.

Written with openapi.py's own helpers (gunicorn's refusals on every route, the error
schema with each route's codes), so that schemathesis (tests/test_gateway_fuzz.py) checks
these answers as it checks the others.
"""

from __future__ import annotations

from typing import Any

from mp3common.options import OPTION_NAMES

from . import openapi
from .tus import TUS_EXTENSIONS, TUS_VERSION

#: Required by tus on every request but OPTIONS; its absence or another version is
#: answered (412 `unsupported_tus_version`), so the document takes any value.
_TUS_RESUMABLE = {
    "name": "Tus-Resumable",
    "in": "header",
    "required": False,
    "description": f"The tus protocol version the client speaks: send {TUS_VERSION}; "
    "without it, or with another, the answer is 412.",
    "schema": {"type": "string"},
}
_FID = {
    "name": "fid",
    "in": "path",
    "required": True,
    "description": "The upload's id, from the Location of its creation: the future job's "
    "fid. Anything that is not one of the caller's own uploads is 404.",
    "schema": {"type": "string"},
}


def _header(description: str, required: bool = True, **schema: Any) -> dict[str, Any]:
    return {
        "description": description,
        "required": required,
        "schema": {"type": "string", **schema},
    }


_ANSWER_HEADERS = {"Tus-Resumable": _header(f"Always {TUS_VERSION}.")}
_EXPIRES = _header("When the upload expires if no byte comes (RFC 9110 date).", False)
_OFFSET = _header("How many bytes of the upload the server has.", pattern=r"^\d+$")
_VERSION_REFUSED = (
    f"Tus-Resumable is missing or not {TUS_VERSION} (`Tus-Version` says which).",
    ["unsupported_tus_version"],
)
_DOWN = ("Auth or MongoDB is unavailable; try again.", ["auth_unavailable", "storage_unavailable"])
_NOT_FOUND = ("Not one of the caller's uploads (or it expired).", ["not_found"])


def _operation(summary: str, operation_id: str, answers: dict[int, Any], **more: Any):
    return {
        "summary": summary,
        "operationId": operation_id,
        "security": openapi._BEARER,
        "responses": openapi._responses(
            {**answers, 401: openapi._TOKEN_REFUSED, 412: _VERSION_REFUSED, 503: _DOWN}
        ),
        **more,
    }


def _empty(description: str, headers: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "headers": {**_ANSWER_HEADERS, **headers}}


def paths() -> dict[str, Any]:
    options = ", ".join(f"`{name}`" for name in OPTION_NAMES)
    return {
        "/uploads": {
            "options": {
                "summary": "tus: what this server speaks (tus 1.0 and its extensions).",
                "operationId": "tusOptions",
                "security": [],
                "parameters": [openapi._REQUEST_ID],
                "responses": openapi._responses(
                    {
                        204: _empty(
                            "The protocol's version, extensions and largest upload.",
                            {
                                "Tus-Version": _header(f"{TUS_VERSION}."),
                                "Tus-Extension": _header(f"{TUS_EXTENSIONS}."),
                                "Tus-Max-Size": _header("MAX_UPLOAD_BYTES.", pattern=r"^\d+$"),
                            },
                        )
                    }
                ),
            },
            "post": _operation(
                "tus creation: a resumable upload of Upload-Length bytes, with its options.",
                "tusCreate",
                {
                    201: _empty(
                        "Created; send its bytes with PATCH to `Location`.",
                        {
                            "Location": _header("/uploads/{fid}."),
                            "Upload-Offset": _header("0."),
                            "Upload-Expires": _EXPIRES,
                        },
                    ),
                    400: (
                        "Upload-Length missing, not a whole number, 0 or deferred; "
                        "Upload-Metadata not base64 pairs; or an option the catalog does "
                        "not allow (`invalid_option` with `option` and `allowed`).",
                        [
                            "invalid_upload_length",
                            "length_required",
                            "empty_file",
                            "invalid_metadata",
                            "invalid_option",
                        ],
                    ),
                    413: (
                        "Larger than MAX_UPLOAD_BYTES, or than the caller's stored-bytes "
                        "quota allows (`quota_exceeded`, a QuotaError).",
                        ["file_too_large", "quota_exceeded"],
                    ),
                    429: openapi._QUOTA_PER_HOUR,
                },
                description=(
                    "Upload-Metadata is tus's `key base64(value)` pairs, comma-separated: "
                    f"`filename`, and the options of POST /upload ({options}); keys tus "
                    "clients add by themselves (`filetype`, `name`, …) are ignored. When "
                    "the last byte arrives (PATCH), the job is made and queued exactly as "
                    "POST /upload does."
                ),
                parameters=[
                    _TUS_RESUMABLE,
                    {
                        "name": "Upload-Length",
                        "in": "header",
                        "required": True,
                        "description": "The file's size in bytes.",
                        "schema": {"type": "string", "pattern": r"^\d{1,18}$"},
                    },
                    {
                        "name": "Upload-Metadata",
                        "in": "header",
                        "required": False,
                        "description": "`filename` and the conversion options, tus-encoded.",
                        "schema": {"type": "string"},
                    },
                    openapi._REQUEST_ID,
                ],
            ),
        },
        "/uploads/{fid}": {
            "head": _operation(
                "tus: where the upload stands (resume from Upload-Offset).",
                "tusOffset",
                {
                    200: _empty(
                        "The upload's offset and length (Cache-Control: no-store).",
                        {
                            "Upload-Offset": _OFFSET,
                            "Upload-Length": _header("The file's size.", pattern=r"^\d+$"),
                            "Upload-Expires": _EXPIRES,
                            "Upload-Job": _header("Once complete: the job's fid.", False),
                        },
                    ),
                    404: _NOT_FOUND,
                },
                parameters=[_FID, _TUS_RESUMABLE, openapi._REQUEST_ID],
            ),
            "patch": _operation(
                "tus: the upload's bytes from Upload-Offset on; the last makes the job.",
                "tusPatch",
                {
                    200: {
                        "description": "The last byte arrived: the job (queued; or, when "
                        "the last PATCH is sent again, as it is now).",
                        "headers": {
                            **_ANSWER_HEADERS,
                            "Upload-Offset": _OFFSET,
                            "Upload-Job": _header("The job's fid."),
                        },
                        "content": {
                            "application/json": {
                                "schema": {"$ref": openapi._REF.format(model="Job")}
                            }
                        },
                    },
                    204: _empty(
                        "Taken; the upload goes on from Upload-Offset.",
                        {"Upload-Offset": _OFFSET, "Upload-Expires": _EXPIRES},
                    ),
                    400: ("Upload-Offset is not a whole number.", ["invalid_upload_offset"]),
                    404: _NOT_FOUND,
                    409: _openapi_error(
                        "Upload-Offset is not the server's (`offset` and the Upload-Offset "
                        "header say where to go on), the upload is complete, or another "
                        "request took it over.",
                        ["offset_mismatch", "upload_finished", "upload_taken_over"],
                    ),
                    413: (
                        "The bytes go past Upload-Length (nothing of the PATCH is kept); or the "
                        "media is longer than the caller's quota (`quota_exceeded`: the "
                        "upload is removed).",
                        ["past_upload_length", "quota_exceeded"],
                    ),
                    415: (
                        "Not application/offset+octet-stream; or the first bytes are not a "
                        "video or audio file (the upload is removed).",
                        ["unsupported_media_type"],
                    ),
                    423: _openapi_error(
                        "Another request is sending bytes to this upload; ask HEAD, then go on.",
                        ["upload_busy"],
                        headers=openapi._RETRY_AFTER,
                    ),
                    429: openapi._QUOTA_PER_HOUR,
                },
                parameters=[
                    _FID,
                    _TUS_RESUMABLE,
                    {
                        "name": "Upload-Offset",
                        "in": "header",
                        "required": True,
                        "description": "Where these bytes go: the server's offset (HEAD).",
                        "schema": {"type": "string", "pattern": r"^\d{1,18}$"},
                    },
                    openapi._REQUEST_ID,
                ],
                requestBody={
                    "required": True,
                    "content": {
                        "application/offset+octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
            ),
            "delete": _operation(
                "tus termination: the unfinished upload and its bytes are removed.",
                "tusTerminate",
                {
                    204: _empty("Removed; nothing of it is left.", {}),
                    404: _NOT_FOUND,
                    409: ("The upload is complete: it is a job now.", ["upload_finished"]),
                    423: _openapi_error(
                        "A PATCH is sending bytes to this upload; try again in a moment.",
                        ["upload_busy"],
                        headers=openapi._RETRY_AFTER,
                    ),
                },
                parameters=[_FID, _TUS_RESUMABLE, openapi._REQUEST_ID],
            ),
        },
    }


def _openapi_error(description: str, codes: list[str], **extra: Any) -> dict[str, Any]:
    return openapi._error(description, codes, **extra)
