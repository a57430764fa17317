"""The auth service's HTTP API: /login, /validate, /healthz, /readyz."""

from __future__ import annotations

import logging

import jwt
import MySQLdb
from flask import Blueprint, Response, current_app, jsonify, request

from mp3common.http import ApiError, error_response

from . import security, users
from .slots import Busy

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="mp3converter"'}


@bp.post("/login")
def login():
    """HTTP basic credentials in, the JWT out as the plain body, as the reference's curl prints."""
    auth = _basic_credentials()
    if auth is None or auth.type != "basic" or not auth.username or not auth.password:
        raise ApiError(
            401,
            "missing_credentials",
            "Send your email and password with HTTP basic auth: curl -u EMAIL:PASSWORD.",
            headers=_BASIC_CHALLENGE,
        )
    settings = current_app.config["SETTINGS"]
    user = users.find(auth.username)
    password_hash = user.password_hash if user else None
    upgraded = None
    try:
        with current_app.extensions["auth_slots"].held(
            security.memory_kib(password_hash), settings.login_queue_timeout_seconds
        ):
            accepted = security.verify_password(auth.password, password_hash)
            if accepted and security.needs_rehash(password_hash):
                upgraded = security.hash_password(auth.password)
    except Busy:
        log.warning("login refused: every argon2 slot is taken")
        raise ApiError(
            503,
            "busy",
            "Too many logins at once; try again in a moment.",
            headers={"Retry-After": "1"},
        ) from None
    if not accepted:
        log.info("login refused")
        raise ApiError(
            401, "invalid_credentials", "The email or password is wrong.", headers=_BASIC_CHALLENGE
        )
    if upgraded is not None:
        _store_upgraded_hash(user, upgraded)
    token = security.issue_token(
        user.email,
        user.id,
        user.token_version,
        settings.jwt_secret,
        settings.jwt_lifetime_seconds,
    )
    log.info("login accepted")
    return Response(token, status=200, mimetype="text/plain")


def _basic_credentials():
    """The request's credentials; None also for a header werkzeug cannot read (non-ASCII
    where base64 belongs raises ValueError: that is missing credentials, not a 500)."""
    try:
        return request.authorization
    except ValueError:
        return None


def _store_upgraded_hash(user: users.User, new_hash: str) -> None:
    """The password hashed again with today's argon2 parameters; a failure costs nothing
    but the upgrade (the old hash still verifies), so the login goes on."""
    try:
        if users.upgrade_password_hash(user.id, user.password_hash, new_hash):
            log.info("password hash upgraded to today's argon2 parameters")
    except MySQLdb.Error as exc:
        log.warning("password hash not upgraded: %s", exc)


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
    subject, user_id, version = claims.get("sub"), claims.get("uid"), claims.get("ver")
    if not isinstance(subject, str) or not subject.strip():
        raise ApiError(401, "invalid_token", "The token is not valid; log in again.")
    if not _an_int(user_id) or not _an_int(version):
        # Issued before tokens named their user's row and version: cannot be checked.
        raise ApiError(401, "invalid_token", "The token is not valid; log in again.")
    if not users.token_is_current(subject, user_id, version):
        raise ApiError(
            401,
            "invalid_token",
            "The token is no longer valid (the account was removed or its password "
            "changed); log in again.",
        )
    return jsonify(claims)


def _an_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
