"""The auth service's HTTP API: /login, /validate, /healthz, /readyz."""

from __future__ import annotations

import logging

import jwt
import MySQLdb
from flask import Blueprint, Response, current_app, jsonify, request

from mp3common.http import ApiError, error_response

from . import security, users

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="mp3converter"'}


@bp.post("/login")
def login():
    """HTTP basic credentials in, the JWT out as the plain body, as the reference's curl prints."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or not auth.password:
        raise ApiError(
            401,
            "missing_credentials",
            "Send your email and password with HTTP basic auth: curl -u EMAIL:PASSWORD.",
            headers=_BASIC_CHALLENGE,
        )
    password_hash = users.password_hash_for(auth.username)
    if not security.verify_password(auth.password, password_hash):
        log.info("login refused")
        raise ApiError(
            401, "invalid_credentials", "The email or password is wrong.", headers=_BASIC_CHALLENGE
        )
    settings = current_app.config["SETTINGS"]
    email = users.normalize_email(auth.username)
    token = security.issue_token(email, settings.jwt_secret, settings.jwt_lifetime_seconds)
    log.info("login accepted")
    return Response(token, status=200, mimetype="text/plain")


@bp.post("/validate")
def validate():
    """A Bearer token in, its claims out; every kind of bad token is the same 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "missing_token", "Send the token from /login as 'Authorization: Bearer <token>'."
        )
    try:
        claims = security.decode_token(token.strip(), current_app.config["SETTINGS"].jwt_secret)
    except jwt.ExpiredSignatureError:
        raise ApiError(401, "token_expired", "The token has expired; log in again.") from None
    except jwt.PyJWTError:
        raise ApiError(401, "invalid_token", "The token is not valid; log in again.") from None
    if not isinstance(claims.get("sub"), str):
        raise ApiError(401, "invalid_token", "The token is not valid; log in again.")
    return jsonify(claims)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    try:
        users.ping()
    except MySQLdb.Error:
        log.warning("not ready: MySQL does not answer", exc_info=True)
        raise ApiError(503, "database_unavailable", "MySQL does not answer.") from None
    return jsonify(status="ready")


@bp.app_errorhandler(MySQLdb.OperationalError)
def database_unavailable(exc: MySQLdb.OperationalError):
    log.error("MySQL unavailable: %s", exc)
    return error_response(
        503, "database_unavailable", "The user database is unavailable; try again in a moment."
    )
