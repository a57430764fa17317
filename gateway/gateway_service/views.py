"""The gateway's HTTP API: what users talk to (the reference's curl calls work as written)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from gridfs.errors import NoFile
from pymongo.errors import PyMongoError

from mp3common.amqp import PublishError
from mp3common.http import ApiError, error_response
from mp3common.jobs import (
    CONVERTING,
    DONE,
    FAILED,
    QUEUED,
    Job,
    parse_id,
    public_view,
)
from mp3common.logs import request_id

from . import downloads, openapi, uploads
from .api import FidQuery, JobsQuery
from .errors import (
    AuthUnavailable,
    GatewayError,
    NotAuthenticated,
    NotMedia,
    QueueUnavailable,
    UploadExpired,
    UploadTooLarge,
)
from .services import services
from .upload_saga import accept_upload

log = logging.getLogger(__name__)
bp = Blueprint("gateway", __name__)

#: Multipart's own bytes around the file (boundaries, part headers): allowed on top of
#: MAX_UPLOAD_BYTES when judging a request by its Content-Length before reading it.
MULTIPART_ALLOWANCE_BYTES = 64 * 1024


def _current_user() -> str:
    return services().auth.user_for(request.headers.get("Authorization"))


def _links(fid: str) -> dict[str, str]:
    return {
        "status_url": url_for("gateway.status", fid=fid),
        "download_url": url_for("gateway.download", fid=fid),
    }


def _owned_job(owner: str) -> Job:
    """The caller's job named by ?fid= (upload id or MP3 id); 404 for anyone else's."""
    fid = parse_id(FidQuery.from_request(request.args).fid)
    job = services().storage.jobs.for_owner(fid, owner) if fid is not None else None
    if job is None:
        raise ApiError(404, "not_found", "You have no file with that fid.")
    return job


@bp.post("/login")
def login():
    """Passed to auth as is: the JWT comes back as the plain body, as the reference's curl shows."""
    body, status, headers = services().auth.login(request.headers.get("Authorization"))
    return Response(body, status=status, headers=headers)


@bp.post("/upload")
def upload():
    owner = _current_user()
    settings = current_app.config["SETTINGS"]
    boundary = uploads.boundary_of(request.headers.get("Content-Type"))
    declared = request.content_length
    if declared is not None and declared > settings.max_upload_bytes + MULTIPART_ALLOWANCE_BYTES:
        raise uploads.too_large(settings.max_upload_bytes)
    job = accept_upload(
        request.stream,
        boundary,
        owner=owner,
        max_bytes=settings.max_upload_bytes,
        ffmpeg=settings.ffmpeg_binary,
        request_id=request_id.get(),
        storage=services().storage,
        publisher=services().publisher,
    )
    view = {**public_view(job), **_links(str(job.id))}
    response = jsonify(view)
    response.status_code = 202
    response.headers["Location"] = view["status_url"]
    return response


#: The HTTP status of each error below the views (errors.py); any other is 400.
STATUS_OF = {
    NotAuthenticated: 401,
    UploadExpired: 408,
    UploadTooLarge: 413,
    NotMedia: 415,
    AuthUnavailable: 503,
    QueueUnavailable: 503,
}


@bp.app_errorhandler(GatewayError)
def gateway_error(exc: GatewayError):
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 400)
    return error_response(status, exc.code, exc.message, **exc.detail)


@bp.get("/status")
def status():
    job = _owned_job(_current_user())
    view = public_view(job)
    if job.state == DONE:
        view.update(_links(str(job.id)))
    return jsonify(view)


@bp.get("/jobs")
def jobs():
    owner = _current_user()
    query = JobsQuery.from_request(request.args)
    page, per_page = query.page, query.per_page
    store = services().storage.jobs
    total = store.count_for_owner(owner)
    found = store.list_for_owner(owner, limit=per_page, skip=(page - 1) * per_page)
    more = page * per_page < total
    return jsonify(
        jobs=[public_view(job) for job in found],
        page=page,
        per_page=per_page,
        total=total,
        next=url_for("gateway.jobs", page=page + 1, per_page=per_page) if more else None,
    )


@bp.get("/download")
def download():
    job = _owned_job(_current_user())
    if job.state in (QUEUED, CONVERTING):
        raise ApiError(
            409,
            "not_ready",
            "The MP3 is not ready yet; ask /status and download once it says done.",
            state=job.state.value,
        )
    if job.state == FAILED:
        raise ApiError(
            422,
            "conversion_failed",
            "This video could not be converted; the reason says why.",
            state=FAILED,
            reason=job.reason,
        )
    try:
        grid_out = services().storage.mp3s.open_download_stream(job.mp3_fid)
    except NoFile:
        log.error("job %s is done but its MP3 %s is missing", job.id, job.mp3_fid)
        raise ApiError(404, "not_found", "The MP3 of this file is missing.") from None
    return downloads.mp3_response(request, grid_out, downloads.mp3_name(job.filename))


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/openapi.json")
def openapi_document():
    """The API described (OpenAPI 3.1): every route, parameter, body and error."""
    return jsonify(openapi.document())


@bp.get("/readyz")
def readyz():
    """Ready when auth, MongoDB and RabbitMQ all answer; each says so in the body."""
    checks = {}
    for name, check in (
        ("auth", services().auth.check),
        ("mongodb", services().storage.ping),
        ("rabbitmq", services().publisher.check),
    ):
        try:
            check()
            checks[name] = "ok"
        except (AuthUnavailable, PyMongoError, PublishError) as exc:
            log.warning("not ready: %s does not answer (%s)", name, exc)
            checks[name] = "unavailable"
    if any(value != "ok" for value in checks.values()):
        return error_response(
            503, "not_ready", "A service the gateway needs is unavailable.", checks=checks
        )
    return jsonify(status="ready", checks=checks)


@bp.app_errorhandler(PyMongoError)
def storage_unavailable(exc: PyMongoError):
    log.error("MongoDB unavailable: %r", exc)
    return error_response(
        503, "storage_unavailable", "File storage is unavailable; try again in a moment."
    )
