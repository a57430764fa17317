"""The notification service's settings: read once from the environment at start, validated.

The reference's names stay (`GMAIL_ADDRESS`, `GMAIL_PASSWORD`, `MP3_QUEUE`), with Gmail
as the default provider; `SMTP_*` point it anywhere else, including the local sink that
`make run` starts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from mp3common.settings import Env

GMAIL_HOST = "smtp.gmail.com"
SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class Settings:
    production: bool
    rabbitmq_url: str
    mp3_queue: str
    mongodb_uri: str
    mongodb_db: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_username: str
    smtp_password: str
    smtp_timeout: float
    smtp_ca_file: str
    sender: str
    public_url: str
    send_attempts: int
    retry_backoff_seconds: float
    retry_max_backoff_seconds: float
    heartbeat_file: str
    stop_grace_seconds: float
    metrics_port: int | None
    log_level: str

    @property
    def claim_lease_seconds(self) -> float:
        """Longer than one send can take: connect, EHLO, STARTTLS, AUTH, DATA each time out."""
        return self.smtp_timeout * 6 + 10


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load(environ: Mapping[str, str] | None = None) -> Settings:
    env = Env(environ)
    security = env.choice("SMTP_SECURITY", "starttls", SECURITY_MODES)
    sender = env.text("GMAIL_ADDRESS", dev_default="mp3converter@localhost")
    settings = Settings(
        production=env.production,
        rabbitmq_url=env.amqp_url("RABBITMQ_URL"),
        mp3_queue=env.text("MP3_QUEUE", "mp3"),
        mongodb_uri=env.text("MONGODB_URI", dev_default="mongodb://127.0.0.1:27017"),
        mongodb_db=env.text("MONGODB_DB", "mp3converter"),
        smtp_host=env.text("SMTP_HOST", GMAIL_HOST),
        smtp_port=env.integer(
            "SMTP_PORT", DEFAULT_PORTS.get(security, 587), minimum=1, maximum=65535
        ),
        smtp_security=security,
        smtp_username=env.text("SMTP_USERNAME", sender),
        smtp_password=env.text("GMAIL_PASSWORD", ""),
        smtp_timeout=env.number("SMTP_TIMEOUT", 20.0, minimum=1.0),
        smtp_ca_file=env.text("SMTP_CA_FILE", ""),
        sender=sender,
        public_url=env.text("PUBLIC_URL", "http://mp3converter.com").rstrip("/"),
        send_attempts=env.integer("SMTP_SEND_ATTEMPTS", 3, minimum=1, maximum=20),
        retry_backoff_seconds=env.number("SMTP_RETRY_BACKOFF_SECONDS", 2.0),
        retry_max_backoff_seconds=env.number("SMTP_RETRY_MAX_BACKOFF_SECONDS", 60.0),
        heartbeat_file=env.text("HEARTBEAT_FILE", ""),
        stop_grace_seconds=env.number("STOP_GRACE_SECONDS", 30.0, minimum=1),
        metrics_port=env.integer("METRICS_PORT", 0, minimum=0, maximum=65535) or None,
        log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
    )
    if sender and "@" not in sender:
        env.problems.append(f"GMAIL_ADDRESS must be an email address, not {sender!r}")
    if settings.smtp_password and security == "none" and not _is_loopback(settings.smtp_host):
        env.problems.append(
            "SMTP_SECURITY=none would send GMAIL_PASSWORD unencrypted to "
            f"{settings.smtp_host}; use starttls or ssl"
        )
    if env.production and settings.smtp_host == GMAIL_HOST and not settings.smtp_password:
        env.problems.append("GMAIL_PASSWORD is not set (Gmail needs an app password)")
    if not settings.public_url.startswith(("http://", "https://")):
        env.problems.append(
            f"PUBLIC_URL must start with http:// or https://, not {settings.public_url!r}"
        )
    env.finish("notification")
    return settings
