"""The gateway's HTTP API: what users talk to (the reference's curl calls work as written)."""

from __future__ import annotations

import functools
import logging

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from gridfs.errors import NoFile
from limits.errors import StorageError
from pymongo.errors import PyMongoError

from mp3common.amqp import PublishError
from mp3common.http import ApiError, error_response
from mp3common.jobs import (
    CANCELLED,
    CONVERTING,
    DONE,
    FAILED,
    QUEUED,
    Job,
    iso,
    parse_id,
    public_view,
)
from mp3common.logs import request_id
from mp3common.options import describe

from . import downloads, lifecycle, openapi, uploads
from .api import FidQuery, JobsQuery
from .errors import (
    AuthUnavailable,
    GatewayError,
    JobConflict,
    JobGone,
    NotAuthenticated,
    NotMedia,
    QueueUnavailable,
    QuotaExceeded,
    TooManyJobs,
    UploadExpired,
    UploadTooLarge,
)
from .services import services
from .upload_saga import accept_upload

log = logging.getLogger(__name__)
bp = Blueprint("gateway", __name__)


def _current_user() -> str:
    return services().auth.user_for(request.headers.get("Authorization"))


def _links(fid: str) -> dict[str, str]:
    return {
        "status_url": url_for("gateway.status", fid=fid),
        "job_url": url_for("gateway.job", fid=fid),
        "download_url": url_for("gateway.download", fid=fid),
    }


def _owned(fid_text: str | None, owner: str) -> Job:
    """The caller's job by its fid (upload id or output id); 404 for anyone else's."""
    fid = parse_id(fid_text)
    job = services().storage.jobs.for_owner(fid, owner) if fid is not None else None
    if job is None:
        raise ApiError(404, "not_found", "You have no file with that fid.")
    return job


def _owned_job(owner: str) -> Job:
    """The caller's job named by ?fid=."""
    return _owned(FidQuery.from_request(request.args).fid, owner)


def _accepted(job: Job) -> Response:
    """202: the job is queued; `Location` is where to ask for it."""
    view = {**public_view(job), **_links(str(job.id))}
    response = jsonify(view)
    response.status_code = 202
    response.headers["Location"] = view["status_url"]
    return response


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
    allowance = uploads.MULTIPART_ALLOWANCE_BYTES
    if declared is not None and declared > settings.max_upload_bytes + allowance:
        raise uploads.too_large(settings.max_upload_bytes)
    quotas = services().quotas
    job = accept_upload(
        request.stream,
        boundary,
        owner=owner,
        limits=quotas.admit_upload(owner, declared),
        ffmpeg=settings.ffmpeg_binary,
        request_id=request_id.get(),
        storage=services().storage,
        publisher=services().publisher,
        admit=lambda: quotas.count_job(owner),
    )
    return _accepted(job)


#: The HTTP status of each error below the views (errors.py); any other is 400.
STATUS_OF = {
    NotAuthenticated: 401,
    UploadExpired: 408,
    JobConflict: 409,
    JobGone: 410,
    UploadTooLarge: 413,
    QuotaExceeded: 413,
    NotMedia: 415,
    TooManyJobs: 429,
    AuthUnavailable: 503,
    QueueUnavailable: 503,
}


@bp.app_errorhandler(GatewayError)
def gateway_error(exc: GatewayError):
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 400)
    return error_response(status, exc.code, exc.message, exc.headers, **exc.detail)


def _job_view(job: Job) -> Response:
    view = public_view(job)
    if job.state == DONE:
        view.update(_links(str(job.id)))
    return jsonify(view)


@bp.get("/status")
def status():
    return _job_view(_owned_job(_current_user()))


@bp.get("/jobs/<fid>")
def job(fid: str):
    """The job, as /status?fid= shows it."""
    return _job_view(_owned(fid, _current_user()))


@bp.delete("/jobs/<fid>")
def delete_job(fid: str):
    """Remove the job, its video and its output; anyone else's is a 404, nothing removed."""
    lifecycle.delete_job(services().storage, _owned(fid, _current_user()))
    return Response(status=204)


@bp.post("/jobs/<fid>/cancel")
def cancel_job(fid: str):
    job = _owned(fid, _current_user())
    cancelled = lifecycle.cancel_job(services().storage, job, current_app.config["SETTINGS"])
    return jsonify(public_view(cancelled))


@bp.post("/jobs/<fid>/retry")
def retry_job(fid: str):
    job = _owned(fid, _current_user())
    admit = functools.partial(services().quotas.count_job, job.owner)
    return _accepted(
        lifecycle.retry_job(services().storage, services().publisher, job, admit=admit)
    )


@bp.get("/formats")
def formats():
    """What a client may choose on upload: the formats, their qualities, every option."""
    return jsonify(describe())


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
    _check_downloadable(job)
    try:
        grid_out = services().storage.mp3s.open_download_stream(job.mp3_fid)
    except NoFile:
        log.error("job %s is done but its output %s is missing", job.id, job.mp3_fid)
        raise ApiError(404, "not_found", "The output of this file is missing.") from None
    output = job.options.output
    name = downloads.output_name(job.filename, output)
    return downloads.output_response(request, grid_out, name, output.mime_type)


def _check_downloadable(job: Job) -> None:
    """ApiError unless the job is done and its output kept."""
    if job.state in (QUEUED, CONVERTING):
        raise ApiError(
            409,
            "not_ready",
            "The file is not ready yet; ask /status and download once it says done.",
            state=job.state.value,
        )
    if job.state == CANCELLED:
        raise ApiError(
            409,
            "cancelled",
            "The job was cancelled; retry it (POST /jobs/<fid>/retry) to convert it.",
            state=CANCELLED,
        )
    if job.state == FAILED:
        raise ApiError(
            422,
            "conversion_failed",
            "This video could not be converted; the reason says why.",
            state=FAILED,
            reason=job.reason,
        )
    if lifecycle.expired(job):
        raise ApiError(
            410,
            "output_expired",
            f"The file expired on {iso(job.expires_at)} and was removed; upload the video "
            "again to convert it again.",
            expired_at=iso(job.expires_at),
        )


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
@bp.app_errorhandler(StorageError)  # the quota counters' (limits), in the same MongoDB
def storage_unavailable(exc: Exception):
    log.error("MongoDB unavailable: %r", exc)
    return error_response(
        503, "storage_unavailable", "File storage is unavailable; try again in a moment."
    )
