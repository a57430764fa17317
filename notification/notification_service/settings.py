"""The notification service's settings: read once from the environment at start, validated.

The reference's names stay (`GMAIL_ADDRESS`, `GMAIL_PASSWORD`, `MP3_QUEUE`), with Gmail
as the default provider; `SMTP_*` point it anywhere else, including the local sink that
`make run` starts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, model_validator

from mp3common.settings import (
    BrokerSettings,
    ConsumerSettings,
    DevDefault,
    Secret,
    StoreSettings,
)

GMAIL_HOST = "smtp.gmail.com"
SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def _an_address(sender: str) -> str:
    if "@" not in sender:
        raise ValueError(f"must be an email address, not {sender!r}")
    return sender


def _a_public_url(url: str) -> str:
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, not {url!r}")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BrokerSettings, StoreSettings, ConsumerSettings):
    """`MP3_QUEUE` in; the mail server, the sender, and how sending is retried."""

    service_name = "notification"

    mp3_queue: str = "mp3"
    #: The From address, and the SMTP login unless SMTP_USERNAME says otherwise.
    sender: Annotated[str, DevDefault("mp3converter@localhost"), AfterValidator(_an_address)] = (
        Field(validation_alias="GMAIL_ADDRESS")
    )
    smtp_security: Annotated[
        Literal["starttls", "ssl", "none"], BeforeValidator(lambda v: v.strip().lower())
    ] = "starttls"
    smtp_host: str = GMAIL_HOST
    #: Default: the port of the security mode (587, 465 or 25).
    smtp_port: int = Field(
        default_factory=lambda data: DEFAULT_PORTS[data.get("smtp_security", "starttls")],
        ge=1,
        le=65535,
    )
    smtp_username: str = Field(default_factory=lambda data: data.get("sender", ""))
    smtp_password: Annotated[str, Secret()] = Field("", validation_alias="GMAIL_PASSWORD")
    #: Each network step's limit (connect, each SMTP command).
    smtp_timeout_seconds: float = Field(
        20.0, ge=1, validation_alias=AliasChoices("SMTP_TIMEOUT_SECONDS", "SMTP_TIMEOUT")
    )
    #: A CA bundle for the mail server's certificate; "" = the system's.
    smtp_ca_file: str = ""
    #: Where the mail's download link points.
    public_url: Annotated[str, AfterValidator(_a_public_url)] = "http://mp3converter.com"
    send_attempts: int = Field(3, ge=1, le=20, validation_alias="SMTP_SEND_ATTEMPTS")
    retry_backoff_seconds: float = Field(2.0, ge=0, validation_alias="SMTP_RETRY_BACKOFF_SECONDS")
    retry_max_backoff_seconds: float = Field(
        60.0, ge=0, validation_alias="SMTP_RETRY_MAX_BACKOFF_SECONDS"
    )
    stop_grace_seconds: float = Field(30.0, ge=1)

    @property
    def claim_lease_seconds(self) -> float:
        """Longer than one send can take: connect, EHLO, STARTTLS, AUTH, DATA each time out."""
        return self.smtp_timeout_seconds * 6 + 10

    @model_validator(mode="after")
    def _a_mail_server_that_can_work(self) -> Self:
        if self.smtp_password and self.smtp_security == "none" and not _is_loopback(self.smtp_host):
            raise ValueError(
                "SMTP_SECURITY=none would send GMAIL_PASSWORD unencrypted to "
                f"{self.smtp_host}; use starttls or ssl"
            )
        if self.production and self.smtp_host == GMAIL_HOST and not self.smtp_password:
            raise ValueError("GMAIL_PASSWORD is not set (Gmail needs an app password)")
        return self


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """The notification service's settings from `environ` (default: os.environ)."""
    return Settings.read(environ)
