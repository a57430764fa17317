"""The auth service's settings: read once from the environment at start, validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mp3common.settings import Env

# Known to everyone, so refused in production; development only.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-do-not-deploy"  # noqa: S105


@dataclass(frozen=True)
class Settings:
    production: bool
    mysql_host: str
    mysql_port: int
    mysql_user: str
    mysql_password: str
    mysql_db: str
    mysql_connect_timeout: int
    jwt_secret: str
    jwt_lifetime_seconds: int
    log_level: str
    metrics_port: int | None


def load(environ: Mapping[str, str] | None = None) -> Settings:
    env = Env(environ)
    settings = Settings(
        production=env.production,
        mysql_host=env.text("MYSQL_HOST", dev_default="127.0.0.1"),
        mysql_port=env.integer("MYSQL_PORT", 3306, minimum=1, maximum=65535),
        mysql_user=env.text("MYSQL_USER", dev_default="auth"),
        mysql_password=env.text("MYSQL_PASSWORD", dev_default="", secret=True),
        mysql_db=env.text("MYSQL_DB", dev_default="auth"),
        mysql_connect_timeout=env.integer("MYSQL_CONNECT_TIMEOUT", 3, minimum=1, maximum=60),
        jwt_secret=env.text("JWT_SECRET", dev_default=DEV_JWT_SECRET, secret=True),
        jwt_lifetime_seconds=env.integer("JWT_LIFETIME_SECONDS", 86400, minimum=60),
        log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        metrics_port=env.integer("METRICS_PORT", 0, minimum=0, maximum=65535) or None,
    )
    # An unset JWT_SECRET is already reported as such; only a set one can be too short.
    if settings.jwt_secret and len(settings.jwt_secret.encode()) < 32:
        env.problems.append("JWT_SECRET must be at least 32 bytes (HS256 needs a 256-bit key)")
    env.finish("auth")
    return settings
