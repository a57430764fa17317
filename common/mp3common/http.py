"""One JSON error shape for every HTTP service: {"error": code, "message": what to do}."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from flask import Request as FlaskRequest
from werkzeug.datastructures import Authorization
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by a view to answer with `status` and a JSON body a person can act on."""

    def __init__(
        self, status: int, error: str, message: str, *, headers: dict | None = None, **extra: object
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}
        self.extra = extra


class Request(FlaskRequest):
    """Flask's request, but credentials that cannot be read are no credentials.

    Werkzeug decodes `Authorization: Basic <non-ASCII>` with base64.b64decode, which
    raises ValueError (not the binascii.Error Werkzeug catches): every `request.authorization`
    on such a header was a 500. Set it with `app.request_class = Request`.
    """

    @property
    def authorization(self) -> Authorization | None:
        try:
            return super().authorization
        except ValueError:
            return None


def error_response(
    status: int, error: str, message: str, headers: dict | None = None, **extra: object
):
    body = {"error": error, "message": message, **extra}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Turn every error, ours or Werkzeug's or unexpected, into the same JSON shape."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.error, exc.message, exc.headers, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        # Its own headers stay (a 405's Allow, a 416's Content-Range); the body is ours.
        headers = {
            name: value for name, value in exc.get_headers() if name.lower() != "content-type"
        }
        return error_response(exc.code or 500, code, exc.description or exc.name, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(
            500, "internal_error", "Something went wrong on our side; try again later."
        )
