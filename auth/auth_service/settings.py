"""The auth service's settings: read once from the environment at start, validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, AliasChoices, Field

from mp3common.settings import DevDefault, ServiceSettings

# Known to everyone, so refused in production; development only.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-do-not-deploy"  # noqa: S105


def _an_hs256_key(secret: str) -> str:
    if len(secret.encode()) < 32:
        raise ValueError("must be at least 32 bytes (HS256 needs a 256-bit key)")
    return secret


class Settings(ServiceSettings):
    """MariaDB (the users) and the JWT key; the reference's variable names."""

    service_name = "auth"

    mysql_host: Annotated[str, DevDefault("127.0.0.1")]
    mysql_port: int = Field(3306, ge=1, le=65535)
    mysql_user: Annotated[str, DevDefault("auth")]
    mysql_password: Annotated[str, DevDefault("", secret=True)]
    mysql_db: Annotated[str, DevDefault("auth")]
    #: How long a connection to MariaDB may take before login answers 503.
    mysql_connect_timeout_seconds: int = Field(
        3,
        ge=1,
        le=60,
        validation_alias=AliasChoices("MYSQL_CONNECT_TIMEOUT_SECONDS", "MYSQL_CONNECT_TIMEOUT"),
    )
    #: The HS256 key that signs and checks every token.
    jwt_secret: Annotated[
        str, DevDefault(DEV_JWT_SECRET, secret=True), AfterValidator(_an_hs256_key)
    ]
    jwt_lifetime_seconds: int = Field(86400, ge=60)
    #: argon2 computations (19 MiB each) one worker process runs at once: with the number
    #: of workers, auth's memory under a login flood (auth/README.md has the budget).
    login_verify_slots: int = Field(2, ge=1, le=32)
    #: How long a login waits for a free slot before it is answered 503 `busy`.
    login_queue_timeout_seconds: float = Field(1.0, gt=0, le=30)


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """The auth service's settings from `environ` (default: os.environ); SettingsError if not."""
    return Settings.read(environ)
