"""Rate limits on POST /login: per client address, and per account from one address.

Every login costs auth an argon2 verify (19 MiB, ~20 ms of a core); auth bounds how many
run at once (auth_service/slots.py), and these limits keep one client from filling that
bound. The second limit is per account *and* address, never per account alone: a flood
aimed at someone's account from one place exhausts that place's allowance, while the
owner logging in from anywhere else is not counted against it.

The counters are `limits`' moving windows (the library under Flask-Limiter) in the
gateway's own MongoDB (collections `login_limit_counters`, `login_limit_windows`, emptied
by TTL indexes), so every replica counts the same logins. Should MongoDB fail, each
process counts on its own for a while (FALLBACK_SECONDS) rather than letting logins
through unlimited or refusing them.

The client address is `request.remote_addr`: the socket's peer, or with
TRUSTED_PROXY_HOPS = n the address the n-th proxy from us (the ingress) wrote in
X-Forwarded-For (werkzeug's ProxyFix). Anything a client writes there itself stands to the
left of what the ingress writes, and is never read.

Every refused login (401 from auth, or 429 here) is logged with that client address and
the account as HMAC-SHA256(LOG_ACCOUNT_KEY, email) (`account_key`), never the email or
the password: guesses at one account, from one place or many, share one value in the logs.
The counters are keyed by the same value.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time

from flask import Flask, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pymongo.errors import PyMongoError
from werkzeug.datastructures import Authorization
from werkzeug.middleware.proxy_fix import ProxyFix

from mp3common.http import ApiError

from .rate_counters import shared_limiter
from .settings import Settings

log = logging.getLogger(__name__)

#: The endpoint the limits guard (the login view of views.py).
LOGIN_ENDPOINT = "gateway.login"
#: How long a process counts on its own after the shared storage failed.
FALLBACK_SECONDS = 30
#: How long a refused login waits for its answer where waiting is cheap (a greenlet's
#: sleep under the gevent workers). A flood that waits for each answer, as clients do, is
#: slowed from the ~1000 refusals a second a worker can write to one per connection per
#: second, and leaves the CPU to everyone else's requests (tests/bench/bench_login_flood.py).
REFUSAL_DELAY_SECONDS = 1.0
#: Spent windows a process remembers (each a few hundred bytes).
MAX_REMEMBERED_REFUSALS = 100_000


class LoginLimits:
    def __init__(self, settings: Settings, refusal_delay_seconds: float = 0.0) -> None:
        self.refusal_delay_seconds = refusal_delay_seconds
        self._key = settings.log_account_key.encode()
        self.per_address = parse_many(settings.login_limit_per_address)
        self.per_account = parse_many(settings.login_limit_per_account_and_address)
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared = self._local
        if settings.login_limit_storage == "mongodb":
            self._shared = shared_limiter(settings, "login_limit")
        self._shared_failed_at = -math.inf
        #: (limit, key) → when its spent window lets a login in again.
        self._refused: dict[tuple[RateLimitItem, tuple[str, ...]], float] = {}

    def check(self) -> None:
        """Count this login; ApiError 429 (Retry-After) when one of the limits is spent."""
        address = request.remote_addr or "unknown"
        credentials = _credentials()
        account = account_key(self._key, credentials)
        self._count(self.per_address, ("login-address", address), _FROM_ADDRESS)
        self._count(self.per_account, ("login-account", address, account), _FOR_ACCOUNT)

    def _count(self, items: list[RateLimitItem], key: tuple[str, ...], message: str) -> None:
        for item in items:
            reset_at = self._hit(item, key)
            if reset_at is not None:
                if self.refusal_delay_seconds:
                    time.sleep(self.refusal_delay_seconds)
                seconds = max(1, math.ceil(reset_at - time.time()))
                raise ApiError(
                    429,
                    "too_many_logins",
                    message.format(seconds=seconds),
                    headers={"Retry-After": str(seconds)},
                    retry_after_seconds=seconds,
                )

    def _hit(self, item: RateLimitItem, key: tuple[str, ...]) -> float | None:
        """Count one login: None when allowed, else when the window lets the next one in."""
        refused_until = self._refused.get((item, key))
        if refused_until is not None:
            if refused_until > time.time():
                return refused_until
            del self._refused[(item, key)]
        if time.monotonic() - self._shared_failed_at >= FALLBACK_SECONDS:
            try:
                reset_at = _hit(self._shared, item, key)
            except (StorageError, PyMongoError) as exc:
                log.warning("login limits: the shared counters failed (%s); counting here", exc)
                self._shared_failed_at = time.monotonic()
                reset_at = _hit(self._local, item, key)
        else:
            reset_at = _hit(self._local, item, key)
        if reset_at is not None:
            log.info("logins refused until the window frees: %s spent for %s", item, key[0])
            self._remember_refused(item, key, reset_at)
        return reset_at

    def _remember_refused(self, item: RateLimitItem, key: tuple[str, ...], until: float) -> None:
        """A spent window stays spent until its oldest login ages out (refusals add none,
        and other replicas can only add more): until then this process refuses from memory,
        and a flood costs MongoDB nothing."""
        if len(self._refused) >= MAX_REMEMBERED_REFUSALS:
            now = time.time()
            self._refused = {k: t for k, t in self._refused.items() if t > now}
            if len(self._refused) >= MAX_REMEMBERED_REFUSALS:
                return
        self._refused[(item, key)] = until


def _hit(limiter: MovingWindowRateLimiter, item: RateLimitItem, key: tuple[str, ...]):
    if limiter.hit(item, *key):
        return None
    return limiter.get_window_stats(item, *key).reset_time


_FROM_ADDRESS = "Too many logins from your address; try again in {seconds} s."
_FOR_ACCOUNT = (
    "Too many logins for this account from your address; try again in {seconds} s."
    " Logins from elsewhere are not affected."
)


def account_key(key: bytes, credentials: Authorization | None) -> str:
    """The account a login names, as auth normalises it, as HMAC-SHA256(key, email): the
    logs and the counters hold no email address, and without the key nobody can test a
    guessed one against them. '-' when it names none."""
    if credentials is None or credentials.type != "basic" or not credentials.username:
        return "-"
    email = credentials.username.strip().lower()
    return hmac.new(key, email.encode(), hashlib.sha256).hexdigest()[:32]


def _credentials() -> Authorization | None:
    try:
        return request.authorization
    except ValueError:  # werkzeug cannot read it (not ASCII where base64 belongs)
        return None


def install(app: Flask, settings: Settings) -> None:
    """Trust X-Forwarded-For as far as TRUSTED_PROXY_HOPS says; limit the login view."""
    if settings.trusted_proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_hops)
    delay = REFUSAL_DELAY_SECONDS if _waiting_is_cheap() else 0.0
    limits = app.extensions["login_limits"] = LoginLimits(settings, delay)

    @app.before_request
    def _limit_logins() -> None:
        if request.endpoint == LOGIN_ENDPOINT:
            limits.check()

    key = settings.log_account_key.encode()

    @app.after_request
    def _log_refused_logins(response):
        if request.endpoint == LOGIN_ENDPOINT and response.status_code in (401, 429):
            client = request.remote_addr or "unknown"
            account = account_key(key, _credentials())
            log.warning(
                "login refused (%d) for account %s from %s",
                response.status_code,
                account,
                client,
                extra={
                    "event": "login_refused",
                    "client": client,
                    "account": account,
                    "status": response.status_code,
                },  # fmt: skip
            )
        return response


def _waiting_is_cheap() -> bool:
    """Whether a sleeping request costs only a greenlet (gunicorn's gevent workers patch
    time.sleep); with threads it would hold one of a few, so refusals are not delayed."""
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("time")
