"""The gateway's settings: read once from the environment at start, validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import AfterValidator, AliasChoices, Field, field_validator

from mp3common.settings import (
    BrokerSettings,
    DevDefault,
    MediaSettings,
    RetentionSettings,
    StoreSettings,
)

GiB = 1024**3

#: LOG_ACCOUNT_KEY's development value: published here, so production refuses it.
DEV_LOG_ACCOUNT_KEY = "dev-only-log-account-key-do-not-deploy"  # noqa: S105


def auth_base_url(address: str) -> str:
    """AUTH_SVC_ADDRESS as the reference had it (`host:port`), or with a scheme."""
    address = address.strip().rstrip("/")
    if "://" not in address:
        address = f"http://{address}"
    return address


def _rate_limits(value: str) -> str:
    try:
        parse_many(value)
    except ValueError:
        raise ValueError(f"must be rate limits such as 10/minute;50/hour, not {value!r}") from None
    return value


def _a_32_byte_key(key: str) -> str:
    if len(key.encode()) < 32:
        raise ValueError("must be at least 32 bytes (an HMAC-SHA256 key)")
    return key


def _an_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be host:port or an http(s) URL, not {url!r}")
    return url


class Settings(BrokerSettings, StoreSettings, MediaSettings, RetentionSettings):
    """The auth service's address, the stores, the upload limit and quotas, the outbox
    relay and the expiry sweep."""

    service_name = "gateway"

    #: The auth service, as `host:port` (the reference's form) or a URL; kept as a URL.
    auth_url: Annotated[str, DevDefault("127.0.0.1:5000"), AfterValidator(_an_http_url)] = Field(
        validation_alias="AUTH_SVC_ADDRESS"
    )
    auth_connect_timeout_seconds: float = Field(2.0, ge=0.1)
    auth_timeout_seconds: float = Field(5.0, ge=0.1)
    mongodb_timeout_ms: int = Field(3000, ge=100, le=60_000)
    rabbitmq_timeout_seconds: float = Field(5.0, ge=0.1)
    video_queue: str = "video"
    #: The largest upload taken, in bytes (default 2 GiB).
    max_upload_bytes: int = Field(2 * GiB, ge=1)
    #: How often the outbox relay looks for jobs stored but never queued (0 = never).
    outbox_relay_interval_seconds: int = Field(
        60,
        ge=0,
        validation_alias=AliasChoices(
            "OUTBOX_RELAY_INTERVAL_SECONDS", "STRANDED_JOB_SWEEP_SECONDS"
        ),
    )
    #: How old such a job must be before the relay queues it (longer than an upload's
    #: publish can take).
    outbox_relay_age_seconds: int = Field(
        120,
        ge=10,
        validation_alias=AliasChoices("OUTBOX_RELAY_AGE_SECONDS", "STRANDED_JOB_AGE_SECONDS"),
    )

    #: How long an upload may go without a byte before the outbox relay's sibling, the
    #: orphan sweep, takes it for one whose gateway worker died and removes its chunks
    #: (longer than any pause a live upload makes).
    orphan_upload_age_seconds: int = Field(900, ge=1)
    #: How long a resumable upload (tus.py) may go untouched before it expires and the
    #: sweep removes it with its bytes (its Upload-Expires).
    tus_upload_expiry_seconds: int = Field(24 * 3600, ge=1)
    #: How often each process removes expired resumable uploads (0 = never).
    tus_expiry_sweep_seconds: int = Field(60, ge=0)

    #: How many proxies in front of the gateway write X-Forwarded-For: the client
    #: address is the one the outermost of them reports (1: the ingress). 0 believes no
    #: header: the socket peer is the client (the dev stack, compose). Never more than
    #: there are, or a client can name any address it likes.
    trusted_proxy_hops: Annotated[int, DevDefault(0), Field(ge=0, le=10)]
    #: Logins allowed per client address (limits syntax, several joined by ";").
    login_limit_per_address: Annotated[str, AfterValidator(_rate_limits)] = "60/minute"
    #: Logins allowed per account from one client address: a flood aimed at an account
    #: from one place never locks its owner out from another.
    login_limit_per_account_and_address: Annotated[str, AfterValidator(_rate_limits)] = (
        "10/minute;50/hour"
    )
    #: Where the login counters live: `mongodb` (MONGODB_URI, MONGODB_DB: shared by every
    #: replica) or `memory` (this process only: tests).
    login_limit_storage: Literal["mongodb", "memory"] = "mongodb"
    #: The HMAC key that names an account in the logs and the login counters: a refused
    #: login logs its client and HMAC-SHA256(key, email), never the email, so one account's
    #: guesses line up across replicas and restarts while the logs name no one.
    log_account_key: Annotated[
        str, DevDefault(DEV_LOG_ACCOUNT_KEY, secret=True), AfterValidator(_a_32_byte_key)
    ]

    #: How often the expiry sweep removes what has expired: outputs, kept videos (0 = never).
    expiry_sweep_interval_seconds: int = Field(60, ge=0)

    # --- quotas per user (0 = no limit) --------------------------------------------------
    #: The bytes a user's kept videos and outputs may take together (default 20 GiB).
    quota_stored_bytes: int = Field(20 * GiB, ge=0)
    #: Uploads a user may make in any hour (a moving window).
    quota_jobs_per_hour: int = Field(100, ge=0)
    #: The longest media a user may upload, in seconds (default 6 h, the converter's own
    #: MAX_MEDIA_SECONDS); the converter enforces it when the first bytes do not say.
    quota_media_seconds: float = Field(21600.0, ge=0)

    @field_validator("auth_url", mode="before")
    @classmethod
    def _with_a_scheme(cls, address: object) -> object:
        return auth_base_url(address) if isinstance(address, str) else address


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """The gateway's settings from `environ` (default: os.environ); SettingsError if not."""
    return Settings.read(environ)
