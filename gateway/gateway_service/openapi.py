"""The OpenAPI 3.1 document of the gateway, served at GET /openapi.json.

Built once per process from `api.py`: the query models the views validate with, the
answer models, and the table below of what each route can answer with which error codes
(the README's error table, route by route). tests/test_gateway_fuzz.py runs schemathesis
against it: every answer must fit it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from mp3common.options import FORMATS

from . import api

_REF = "#/components/schemas/{model}"

#: What gunicorn itself refuses before the app sees the request (JSON: mp3common.gunicorn_refusals).
_SERVER_REFUSALS = {
    400: ("The request line or a header is malformed.", ["bad_request"]),
    414: ("The request line (path and query) is too long.", ["uri_too_long"]),
    431: ("A header, or all of them, are too large.", ["request_header_fields_too_large"]),
}
_TOKEN_REFUSED = (
    "No token, another scheme than Bearer, or a token auth refused "
    "(`missing_token`, `invalid_token`, `token_expired`).",
    None,
)
_STORE_OR_AUTH_DOWN = (
    "Auth or MongoDB is unavailable or too slow; try again.",
    ["auth_unavailable", "storage_unavailable"],
)
_NOT_FOUND = (
    "Not the caller's: another user's fid, an unknown fid or a malformed one.",
    ["not_found"],
)
_MISSING_FID = ("No fid, or an empty one.", ["missing_fid"])
_JSON_OF = {
    "Job": "The job.",
    "UploadAccepted": "Stored and queued; `Location` is its status URL.",
    "Catalog": "The formats, their qualities and the options, with their defaults.",
    "JobList": "The caller's jobs, newest first.",
    "Health": "The process runs.",
    "Ready": "Auth, MongoDB and RabbitMQ answer.",
}


def _error(description: str, codes: list[str] | None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": _REF.format(model="Error")}
    if codes:
        schema = {
            "allOf": [schema, {"properties": {"error": {"enum": codes}}}],
        }
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _json(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": _JSON_OF[model],
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
        **extra,
    }


def _responses(answers: dict[int, Any]) -> dict[str, Any]:
    """The operation's answers plus gunicorn's refusals, which every route can get; a 400
    of the route's own gets gunicorn's code added to its list."""
    merged: dict[int, Any] = {}
    for status, (description, codes) in _SERVER_REFUSALS.items():
        merged[status] = _error(description, codes)
    for status, answer in answers.items():
        if isinstance(answer, tuple):
            description, codes = answer
            if status in _SERVER_REFUSALS:
                description = f"{description} Or: {_SERVER_REFUSALS[status][0].lower()}"
                codes = [*codes, *_SERVER_REFUSALS[status][1]]
            answer = _error(description, codes)
        merged[status] = answer
    return {str(status): merged[status] for status in sorted(merged)}


_BEARER = [{"bearerAuth": []}]
_REQUEST_ID = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Your id for this request, kept in every service's logs when it is "
    "1 to 64 letters, digits, '-', '_' or '.'; otherwise the gateway makes one.",
    "schema": {"type": "string"},
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}}


_LOCATION = {
    "Location": {
        "description": "The job's status URL.",
        "required": True,
        "schema": {"type": "string"},
    }
}
_ACCEPTED = _json("UploadAccepted", headers=_LOCATION)
_QUOTA_PER_HOUR = {
    "description": "QUOTA_JOBS_PER_HOUR uploads in the last hour (`quota_exceeded`, quota "
    "`jobs_per_hour`, with `retry_after_seconds`); nothing was kept.",
    "content": {"application/json": {"schema": {"$ref": _REF.format(model="QuotaError")}}},
    "headers": _RETRY_AFTER,
}
_FID_PATH = {
    "name": "fid",
    "in": "path",
    "required": True,
    "description": "The job's fid (or its mp3_fid). Anything that is not one of the "
    "caller's own is 404, and then nothing is changed.",
    "schema": {"type": "string"},
}


def _job_operation(summary: str, operation_id: str, answers: dict[int, Any]) -> dict[str, Any]:
    """An operation on one of the caller's jobs, /jobs/{fid}…"""
    return {
        "summary": summary,
        "operationId": operation_id,
        "security": _BEARER,
        "parameters": [_FID_PATH, _REQUEST_ID],
        "responses": _responses(
            {**answers, 401: _TOKEN_REFUSED, 404: _NOT_FOUND, 503: _STORE_OR_AUTH_DOWN}
        ),
    }


def _job_operations() -> dict[str, Any]:
    return {
        "/jobs/{fid}": {
            "get": _job_operation(
                "One of the caller's jobs (as /status).", "job", {200: _json("Job")}
            ),
            "delete": _job_operation(
                "Delete the job: its video, its output and its record, in any state (a "
                "converting one is stopped).",
                "deleteJob",
                {204: {"description": "Deleted."}},
            ),
        },
        "/jobs/{fid}/cancel": {
            "post": _job_operation(
                "Cancel a queued or converting job; its video is kept for a retry until "
                "FAILED_VIDEO_RETENTION_SECONDS. No mail is sent.",
                "cancelJob",
                {
                    200: _json("Job"),
                    409: ("The job is finished already (`state`).", ["already_finished"]),
                },
            )
        },
        "/jobs/{fid}/retry": {
            "post": _job_operation(
                "Queue a failed or cancelled job again, same fid.",
                "retryJob",
                {
                    202: _ACCEPTED,
                    409: ("The job is not failed or cancelled (`state`).", ["not_retryable"]),
                    410: (
                        "Its video has expired or is gone (`expired_at`); upload it again.",
                        ["video_expired"],
                    ),
                },
            )
        },
    }


def _operations() -> dict[str, Any]:
    from . import tus_openapi  # it builds on this module's helpers

    jobs_query = api.query_parameters(api.JobsQuery)
    fid_query = api.query_parameters(api.FidQuery)
    return {
        "/login": {
            "post": {
                "summary": "Log in: HTTP basic email:password → the JWT as a plain body.",
                "description": "Passed to the auth service; its answer comes back as is.",
                "operationId": "login",
                "security": [{"basicAuth": []}],
                "parameters": [_REQUEST_ID],
                "responses": _responses(
                    {
                        200: {
                            "description": "The JWT, for `Authorization: Bearer <it>`.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        401: (
                            "Missing, malformed or wrong credentials (`missing_credentials`,"
                            " `invalid_credentials`).",
                            None,
                        ),
                        429: _error(
                            "Too many logins from this address or for this account.",
                            None,
                            headers=_RETRY_AFTER,
                        ),
                        503: (
                            "Auth, or its database, is unavailable; or auth is busy with"
                            " other logins (`busy`, with Retry-After: try again then).",
                            ["auth_unavailable", "database_unavailable", "busy"],
                        ),
                    }
                ),
            }
        },
        "/upload": {
            "post": {
                "summary": "Upload a video: it is stored and queued for conversion to MP3.",
                "operationId": "upload",
                "security": _BEARER,
                "parameters": [_REQUEST_ID],
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": api.upload_form_schema()}},
                },
                "responses": _responses(
                    {
                        202: _ACCEPTED,
                        400: (
                            "Not a multipart form with one file in field `file`; or an "
                            "option the catalog does not allow (`invalid_option`: `option` "
                            "names it, `allowed` says what would do; nothing was kept, "
                            "whether it came before the file or after it).",
                            [
                                "not_multipart",
                                "missing_file",
                                "unexpected_file",
                                "too_many_files",
                                "empty_file",
                                "malformed_upload",
                                "invalid_option",
                            ],
                        ),
                        401: _TOKEN_REFUSED,
                        408: (
                            "The body came too slowly, or paused for so long that the upload "
                            "was dropped; nothing was kept, send it again.",
                            ["request_timeout", "upload_expired"],
                        ),
                        413: (
                            "Larger than MAX_UPLOAD_BYTES (`max_bytes`); or past a quota "
                            "(`quota_exceeded`, a QuotaError: `stored_bytes` with `used`, "
                            "`needed` or `size` and Retry-After when a file of the caller's "
                            "expires; `media_seconds` with `duration_seconds`). Nothing was "
                            "kept.",
                            ["file_too_large", "quota_exceeded"],
                        ),
                        415: (
                            "Not a video or audio file, by its content.",
                            ["unsupported_media_type"],
                        ),
                        429: _QUOTA_PER_HOUR,
                        503: (
                            "Auth, MongoDB or RabbitMQ is unavailable; nothing was kept.",
                            ["auth_unavailable", "storage_unavailable", "queue_unavailable"],
                        ),
                    }
                ),
            }
        },
        "/status": {
            "get": {
                "summary": "One of the caller's jobs.",
                "operationId": "status",
                "security": _BEARER,
                "parameters": [*fid_query, _REQUEST_ID],
                "responses": _responses(
                    {
                        200: _json("Job"),
                        400: _MISSING_FID,
                        401: _TOKEN_REFUSED,
                        404: _NOT_FOUND,
                        503: _STORE_OR_AUTH_DOWN,
                    }
                ),
            }
        },
        "/jobs": {
            "get": {
                "summary": "The caller's jobs, newest first, a page at a time.",
                "operationId": "jobs",
                "security": _BEARER,
                "parameters": [*jobs_query, _REQUEST_ID],
                "responses": _responses(
                    {
                        200: _json("JobList"),
                        400: ("A page or per_page out of range.", ["invalid_page"]),
                        401: _TOKEN_REFUSED,
                        503: _STORE_OR_AUTH_DOWN,
                    }
                ),
            }
        },
        "/download": {
            "get": {
                "summary": "The MP3 of a done job (Range and If-Range for resuming).",
                "operationId": "download",
                "security": _BEARER,
                "parameters": [
                    *fid_query,
                    {
                        "name": "Range",
                        "in": "header",
                        "required": False,
                        "description": "One range of bytes, e.g. `bytes=1000-`; one that cannot be "
                        "read, of another unit, or of several ranges is ignored.",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "If-Range",
                        "in": "header",
                        "required": False,
                        "description": "The ETag or Last-Modified of the earlier download.",
                        "schema": {"type": "string"},
                    },
                    *(
                        {
                            "name": name,
                            "in": "header",
                            "required": False,
                            "description": description,
                            "schema": {"type": "string"},
                        }
                        for name, description in _CONDITIONS
                    ),
                    _REQUEST_ID,
                ],
                "responses": _responses(
                    {
                        200: _mp3("The output, in its format's media type."),
                        304: {"description": "Not modified since the copy the client has."},
                        206: _mp3(
                            "The range asked for.",
                            {"Content-Range": {"required": True, "schema": {"type": "string"}}},
                        ),
                        400: _MISSING_FID,
                        401: _TOKEN_REFUSED,
                        404: (
                            f"{_NOT_FOUND[0]} Or the MP3 of a done job is missing.",
                            ["not_found"],
                        ),
                        409: (
                            "The job is not done yet, or was cancelled (`state`).",
                            ["not_ready", "cancelled"],
                        ),
                        410: (
                            "The output has expired and was removed (`expired_at`); upload "
                            "the video again.",
                            ["output_expired"],
                        ),
                        412: (
                            "If-Match or If-Unmodified-Since names another MP3.",
                            ["precondition_failed"],
                        ),
                        416: _error(
                            "The range is outside the file.",
                            ["range_not_satisfiable"],
                            headers={
                                "Content-Range": {
                                    "required": True,
                                    "schema": {"type": "string", "pattern": r"^bytes \*/\d+$"},
                                }
                            },
                        ),
                        422: ("The job failed (`reason`).", ["conversion_failed"]),
                        503: _STORE_OR_AUTH_DOWN,
                    }
                ),
            }
        },
        **_job_operations(),
        "/formats": {
            "get": {
                "summary": "What a client may choose on upload: formats, qualities, options.",
                "operationId": "formats",
                "security": [],
                "parameters": [_REQUEST_ID],
                "responses": _responses({200: _json("Catalog")}),
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness: the process answers.",
                "operationId": "healthz",
                "security": [],
                "parameters": [_REQUEST_ID],
                "responses": _responses({200: _json("Health")}),
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: auth, MongoDB and RabbitMQ answer.",
                "operationId": "readyz",
                "security": [],
                "parameters": [_REQUEST_ID],
                "responses": _responses(
                    {
                        200: _json("Ready"),
                        503: {
                            "description": "What does not answer, in `checks`.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": _REF.format(model="NotReady")}
                                }
                            },
                        },
                    }
                ),
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document.",
                "operationId": "openapi",
                "security": [],
                "parameters": [_REQUEST_ID],
                "responses": _responses(
                    {
                        200: {
                            "description": "The OpenAPI 3.1 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    }
                ),
            }
        },
        **tus_openapi.paths(),  # resumable uploads (tus 1.0)
    }


#: The conditional request headers /download answers to (RFC 9110).
_CONDITIONS = (
    ("If-None-Match", "The ETag of a copy the client has: 304 when it is this MP3."),
    ("If-Modified-Since", "304 when the MP3 is not newer."),
    ("If-Match", "The ETag (or `*`) the MP3 must have, else 412."),
    ("If-Unmodified-Since", "412 when the MP3 is newer."),
)


def _mp3(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    media_types = dict.fromkeys(output.mime_type for output in FORMATS.values())
    answer: dict[str, Any] = {
        "description": description,
        "content": {media_type: {"schema": {"type": "string"}} for media_type in media_types},
    }
    if headers:
        answer["headers"] = headers
    return answer


@cache
def document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(model, "serialization") for model in api.schema_models()], ref_template=_REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mp3converter gateway",
            "version": "1",
            "description": "Upload a video, get its audio back as an MP3. Every error is "
            'JSON: {"error": code, "message": what to do}, with more fields for some.',
        },
        "paths": _operations(),
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "basicAuth": {"type": "http", "scheme": "basic"},
            },
        },
    }
