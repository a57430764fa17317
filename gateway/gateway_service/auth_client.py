"""The auth service over HTTP, as the reference did it: /login passed through, /validate asked.

Every call has a connect and a read timeout, so an auth service that is down or hangs
costs a user a 503 after a few seconds, never a 500 or a request stuck forever.
"""

from __future__ import annotations

import logging

import requests
from requests.adapters import HTTPAdapter

from mp3common.logs import request_id

from .errors import AuthUnavailable, NotAuthenticated
from .settings import Settings

log = logging.getLogger(__name__)

#: Headers of auth's /login answer that the user needs to see (the basic-auth challenge,
#: and when to come back after a 503 busy).
_PASSED_THROUGH = ("Content-Type", "WWW-Authenticate", "Retry-After")


def _unavailable() -> AuthUnavailable:
    return AuthUnavailable(
        "auth_unavailable", "The login service is unavailable; try again in a moment."
    )


class AuthClient:
    """One pooled HTTP session per process (requests' pool is thread-safe for this use)."""

    def __init__(self, settings: Settings) -> None:
        self._base = settings.auth_url
        self._timeout = (settings.auth_connect_timeout_seconds, settings.auth_timeout_seconds)
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=32, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def _post(self, path: str, authorization: str | None) -> requests.Response:
        headers = {}
        if request_id.get():
            headers["X-Request-Id"] = request_id.get()
        if authorization is not None:
            headers["Authorization"] = authorization
        try:
            return self._session.post(f"{self._base}{path}", headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            log.error("auth service unreachable at %s%s: %r", self._base, path, exc)
            raise _unavailable() from None

    def login(self, authorization: str | None) -> tuple[bytes, int, dict[str, str]]:
        """Auth's answer to the same credentials: body, status and the headers that matter."""
        answer = self._post("/login", authorization)
        if answer.status_code >= 500 and answer.status_code != 503:
            # Auth's own failure: the user hears what the gateway says of any auth outage.
            log.error("auth /login answered %s", answer.status_code)
            raise _unavailable()
        headers = {name: answer.headers[name] for name in _PASSED_THROUGH if name in answer.headers}
        return answer.content, answer.status_code, headers

    def user_for(self, authorization: str | None) -> str:
        """The email the Bearer token in `authorization` was issued to.

        Raises NotAuthenticated (no token, or one auth refused, with auth's own reason) or
        AuthUnavailable.
        """
        if not authorization or not authorization.strip():
            raise NotAuthenticated(
                "missing_token",
                "Send the token from /login as 'Authorization: Bearer <token>'.",
            )
        answer = self._post("/validate", authorization)
        if answer.status_code == 401:
            error, message = _error_of(answer)
            raise NotAuthenticated(error, message)
        if answer.status_code != 200:
            log.error("auth /validate answered %s", answer.status_code)
            raise _unavailable()
        try:
            claims = answer.json()
        except ValueError:
            claims = None
        if not isinstance(claims, dict):
            log.error("auth /validate answered 200 without claims")
            raise _unavailable()
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            # Signed with the right key, but naming nobody: the token is bad, auth is fine.
            log.warning("auth accepted a token without a subject; refused here")
            raise NotAuthenticated("invalid_token", "The token is not valid; log in again.")
        return subject

    def check(self) -> None:
        """Raise unless auth answers its liveness probe (for /readyz)."""
        try:
            answer = self._session.get(f"{self._base}/healthz", timeout=self._timeout)
        except requests.RequestException as exc:
            raise _unavailable() from exc
        if answer.status_code != 200:
            raise _unavailable()


def _error_of(answer: requests.Response) -> tuple[str, str]:
    """Auth's own error code and message, so that the user learns why (expired, invalid)."""
    try:
        body = answer.json()
        return str(body["error"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        return "invalid_token", "The token is not valid; log in again."
