"""The gateway's settings: read once from the environment at start, validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from mp3common.settings import Env

GiB = 1024**3


@dataclass(frozen=True)
class Settings:
    production: bool
    auth_url: str
    auth_connect_timeout: float
    auth_timeout: float
    mongodb_uri: str
    mongodb_db: str
    mongodb_timeout_ms: int
    rabbitmq_url: str
    rabbitmq_timeout: float
    video_queue: str
    max_upload_bytes: int
    log_level: str
    metrics_port: int | None
    stranded_job_sweep_seconds: int
    stranded_job_age_seconds: int


def auth_base_url(address: str) -> str:
    """AUTH_SVC_ADDRESS as the reference had it (`host:port`), or with a scheme."""
    address = address.strip().rstrip("/")
    if "://" not in address:
        address = f"http://{address}"
    return address


def load(environ: Mapping[str, str] | None = None) -> Settings:
    env = Env(environ)
    settings = Settings(
        production=env.production,
        auth_url=auth_base_url(env.text("AUTH_SVC_ADDRESS", dev_default="127.0.0.1:5000")),
        auth_connect_timeout=env.number("AUTH_CONNECT_TIMEOUT_SECONDS", 2.0, minimum=0.1),
        auth_timeout=env.number("AUTH_TIMEOUT_SECONDS", 5.0, minimum=0.1),
        mongodb_uri=env.text("MONGODB_URI", dev_default="mongodb://127.0.0.1:27017"),
        mongodb_db=env.text("MONGODB_DB", "mp3converter"),
        mongodb_timeout_ms=env.integer("MONGODB_TIMEOUT_MS", 3000, minimum=100, maximum=60_000),
        rabbitmq_url=env.amqp_url("RABBITMQ_URL"),
        rabbitmq_timeout=env.number("RABBITMQ_TIMEOUT_SECONDS", 5.0, minimum=0.1),
        video_queue=env.text("VIDEO_QUEUE", "video"),
        max_upload_bytes=env.integer("MAX_UPLOAD_BYTES", 2 * GiB, minimum=1),
        log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        metrics_port=env.integer("METRICS_PORT", 0, minimum=0, maximum=65535) or None,
        stranded_job_sweep_seconds=env.integer("STRANDED_JOB_SWEEP_SECONDS", 60, minimum=0),
        stranded_job_age_seconds=env.integer("STRANDED_JOB_AGE_SECONDS", 120, minimum=10),
    )
    parts = urlsplit(settings.auth_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        env.problems.append(
            f"AUTH_SVC_ADDRESS must be host:port or an http(s) URL, not {settings.auth_url!r}"
        )
    if not settings.mongodb_uri.startswith(("mongodb://", "mongodb+srv://")):
        env.problems.append("MONGODB_URI must be a mongodb:// or mongodb+srv:// URI")
    env.finish("gateway")
    return settings
