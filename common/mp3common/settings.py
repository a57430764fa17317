"""A service's settings: read once from the environment at start, validated, every problem told.

Each service declares one `Settings` class (pydantic-settings) built from the groups here:

- `ServiceSettings`: `APP_ENV`, `LOG_LEVEL`, `METRICS_PORT`; the base of every group;
- `BrokerSettings`: `RABBITMQ_URL`, with the production broker rule;
- `StoreSettings`: `MONGODB_URI`, `MONGODB_DB`;
- `ConsumerSettings`: `HEARTBEAT_FILE`, `STOP_GRACE_SECONDS`, for the queue consumers.

A field's environment variable is its name in capitals (or its `validation_alias`); every
duration carries its unit in its name (`_SECONDS`, `_MS`). `Settings.read()` reads the
environment once and either returns a frozen instance or raises `SettingsError` naming every
problem on one line, so that a broken deployment is told everything wrong with it at once.

The rule every service shares: a value marked `DevDefault` is filled in on a developer's
machine (and logged loudly) but must be set in production (`APP_ENV=production`); a
`DevDefault(..., secret=True)` value is refused there even when set, and so is any value
that still holds the manifests' `CHANGE-ME` placeholder.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, NoReturn, Self
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

log = logging.getLogger(__name__)

#: What the committed Kubernetes secret.yaml files hold until `make k8s-secrets` fills
#: them in; a value containing it never runs in production.
PLACEHOLDER = "CHANGE-ME"

#: RabbitMQ's own guest account on this machine: what `make run` gives every service.
DEV_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

#: The MongoDB that `make run` starts (the stand-in, without accounts).
DEV_MONGODB_URI = "mongodb://127.0.0.1:27017"

#: Every secret written in this repository: docker-compose.yml's default passwords and JWT
#: key, and the services' development secrets. Anyone can read them, so production refuses
#: each, as a value or as the password inside a URL. tests/test_deploy_consistency.py
#: checks that every default secret in the repository is in this list.
PUBLISHED_SECRETS = frozenset(
    {
        "dev-only-insecure-jwt-secret-do-not-deploy",  # auth's development JWT key
        "dev-only-compose-jwt-secret-not-for-production",
        "dev-mysql-password",
        "dev-mysql-root-password",
        "dev-mongodb-password",
        "dev-mongodb-root-password",
        "dev-rabbitmq-password",
        "dev-only-log-account-key-do-not-deploy",  # the gateway's LOG_ACCOUNT_KEY
    }
)

#: The exit code after which gunicorn's arbiter stops ("App failed to load",
#: gunicorn.arbiter.Arbiter.APP_LOAD_ERROR) instead of starting worker after worker.
APP_LOAD_ERROR = 4


class SettingsError(RuntimeError):
    """The environment cannot run the service; the message says every reason."""


def refuse_to_start(error: SettingsError) -> NoReturn:
    """End a service whose settings cannot run it: every reason on one stderr line, no
    traceback, and the exit code that stops gunicorn too, so a misconfigured pod
    crash-loops where everybody sees it instead of running forever with no worker. (For a
    web service it is raised at import time, before logging is set up; `flask --app
    server …` exits the same way. The consumers exit through it too: `run_consumer`.)
    """
    sys.stderr.write(f"{error}\n")
    sys.stderr.flush()
    raise SystemExit(APP_LOAD_ERROR)


@dataclass(frozen=True)
class Secret:
    """Field metadata: the value is a credential, or a URL that may carry one; production
    refuses any in PUBLISHED_SECRETS. (A DevDefault(..., secret=True) field is one too.)"""


@dataclass(frozen=True)
class DevDefault:
    """Field metadata: the value used on a developer's machine when the variable is unset.

    Production requires the variable. With `secret`, production also refuses this exact
    value (a well-known throwaway secret, or the guest broker account).
    """

    value: Any
    secret: bool = False


def _lowercase(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _zero_is_off(value: object) -> object:
    return None if value in (0, "0") else value


#: A TCP port to serve on, or None: unset or 0 turns the listener off.
OptionalPort = Annotated[
    Annotated[int, Field(ge=1, le=65535)] | None, BeforeValidator(_zero_is_off)
]
#: One of Python's logging levels, in any case.
LogLevel = Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lowercase)]


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source, over a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class ServiceSettings(BaseSettings):
    """What every service reads. Subclasses name the service (`service_name`)."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", str_strip_whitespace=True, env_ignore_empty=True
    )

    #: The service's name in the refusal message and the development-defaults warning.
    service_name: ClassVar[str] = "service"
    #: Variables an earlier version read, and what took their place: one set is logged
    #: at start (a warning), so that nobody relies on it unawares.
    retired: ClassVar[dict[str, str]] = {}

    app_env: Annotated[Literal["development", "production"], BeforeValidator(_lowercase)] = (
        "development"
    )
    log_level: LogLevel = "info"
    metrics_port: OptionalPort = None

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_sources):
        # `read()` gives every value explicitly; nothing else is consulted.
        return (init_settings,)

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Each field's environment variable: {field name: VARIABLE}."""
        return {name: _env_name(name, field) for name, field in cls.model_fields.items()}

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from `environ` (default: os.environ).

        Raises SettingsError naming every problem; logs a warning naming each development
        default that was filled in.
        """
        environ = os.environ if environ is None else environ
        values = _MappingSource(cls, environ)()
        production = str(values.get("app_env", "")).strip().lower() == "production"
        told, dev_defaults = _apply_the_production_rule(cls, values, production)
        problems = list(told.values())
        try:
            settings = cls(**values)
        except ValidationError as exc:
            problems += _describe(cls, exc, already_told=told)
        if problems:
            raise SettingsError(f"{cls.service_name} cannot start: " + "; ".join(problems))
        for name in sorted(cls.retired.keys() & environ.keys()):
            log.warning("%s is set but no longer read: %s", name, cls.retired[name])
        if dev_defaults:
            log.warning(
                "DEVELOPMENT DEFAULTS IN USE for %s: %s — never run this way in production "
                "(APP_ENV=production refuses them)",
                cls.service_name,
                ", ".join(dev_defaults),
            )
        return settings


def _env_name(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    if isinstance(alias, str):
        return alias
    if alias is not None:  # AliasChoices: the first is the current name, the rest are old
        return str(alias.choices[0])
    return name.upper()


def _is_secret(field: FieldInfo) -> bool:
    dev = _dev_default(field)
    return (dev is not None and dev.secret) or any(isinstance(m, Secret) for m in field.metadata)


def _published(value: str) -> bool:
    """The value, or the password in it when it is a URL, is in PUBLISHED_SECRETS."""
    if value in PUBLISHED_SECRETS:
        return True
    if "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            return False
        return password is not None and unquote(password) in PUBLISHED_SECRETS
    return False


def _dev_default(field: FieldInfo) -> DevDefault | None:
    return next((m for m in field.metadata if isinstance(m, DevDefault)), None)


def _apply_the_production_rule(
    cls: type[ServiceSettings], values: dict[str, Any], production: bool
) -> tuple[dict[str, str], list[str]]:
    """Fill in development defaults, or refuse them and placeholders in production.

    `values` is keyed as the environment source keys it (the field's name, or its first
    alias) and is changed in place. Returns ({VARIABLE: problem}, development defaults used).
    """
    problems: dict[str, str] = {}
    dev_defaults: list[str] = []
    for name, field in cls.model_fields.items():
        env_name = _env_name(name, field)
        key = env_name if field.validation_alias is not None else name
        value = values.get(key)
        dev = _dev_default(field)
        if value is None:
            if dev is not None and not production:
                values[key] = dev.value
                dev_defaults.append(env_name)
            continue
        if production and isinstance(value, str):
            if PLACEHOLDER in value:
                problems[env_name] = (
                    f"{env_name} is a placeholder ({PLACEHOLDER}); set a real value"
                )
            elif dev is not None and dev.secret and value.strip() == dev.value:
                problems[env_name] = f"{env_name} is the development default; set a real value"
            elif _is_secret(field) and _published(value.strip()):
                problems[env_name] = (
                    f"{env_name} holds a secret published in this project's repository "
                    "(a docker-compose.yml or development default); set one of your own"
                )
    return problems, dev_defaults


def _describe(
    cls: type[ServiceSettings], error: ValidationError, already_told: Mapping[str, str]
) -> list[str]:
    """pydantic's errors as one phrase each, named by environment variable; a variable
    already refused by the production rule is not told about twice."""
    names = {**cls.env_names(), **{v: v for v in cls.env_names().values()}}
    described = []
    for item in error.errors(include_url=False):
        where = str(item["loc"][0]) if item["loc"] else ""
        name = names.get(where, where.upper())
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "default_factory_not_called" or name in already_told:
            continue  # a default made from another value, or a value told about already
        if item["type"] == "missing":
            described.append(f"{name} is not set")
        elif not name:  # a rule over several fields: its message names them
            described.append(message)
        elif item["type"] == "value_error":  # ours, written to follow the name
            described.append(f"{name} {message}")
        else:  # pydantic's own: "Input should be ..."
            message = message[:1].lower() + message[1:]
            shown = "" if _SENSITIVE.search(name) else f" (got {item['input']!r})"
            described.append(f"{name}: {message}{shown}")
    return described


#: Variables whose value is never repeated in a message (it is or may hold a credential).
_SENSITIVE = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|_URL$|_URI$")


class BrokerSettings(ServiceSettings):
    """RabbitMQ, reached by one URL."""

    rabbitmq_url: Annotated[str, DevDefault(DEV_RABBITMQ_URL, secret=True)]

    @field_validator("rabbitmq_url")
    @classmethod
    def _the_broker_rule(cls, url: str, info: ValidationInfo) -> str:
        """Production refuses RabbitMQ's guest account, named or implied (a URL without a
        user is guest to pika): it is the broker's well-known default, and the cluster's
        broker lets guest in from its own pod only.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            raise ValueError("must be an amqp:// or amqps:// URL")
        if info.data.get("app_env") == "production" and unquote(parts.username or "guest") == (
            "guest"
        ):
            raise ValueError(
                "logs in as RabbitMQ's guest account; give the service a user of its own"
            )
        return url


class StoreSettings(ServiceSettings):
    """MongoDB: the GridFS buckets and the jobs collection."""

    mongodb_uri: Annotated[str, DevDefault(DEV_MONGODB_URI), Secret()]
    mongodb_db: str = "mp3converter"

    @field_validator("mongodb_uri")
    @classmethod
    def _a_mongodb_uri(cls, uri: str) -> str:
        if not uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must be a mongodb:// or mongodb+srv:// URI")
        return uri


class ConsumerSettings(ServiceSettings):
    """A queue consumer's process: liveness and shutdown."""

    #: Touched while the consumer is healthy (the liveness probe reads its age); "" = none.
    heartbeat_file: str = ""
    #: How long a stopping consumer lets its current message finish before handing it back.
    stop_grace_seconds: float = Field(20.0, ge=1)


def _bundled_ffmpeg() -> str:
    """The ffmpeg in imageio-ffmpeg's wheel (a static build with libmp3lame)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _an_executable(value: str) -> str:
    if not shutil.which(value):
        raise ValueError(f"{value!r} is not an executable")
    return value


class MediaSettings(ServiceSettings):
    """The ffmpeg that judges and converts files (mp3common.media): one binary for both."""

    #: Unset: the static build in imageio-ffmpeg's wheel (the `media` extra).
    ffmpeg_binary: Annotated[str, AfterValidator(_an_executable)] = Field(
        default_factory=_bundled_ffmpeg
    )


class RetentionSettings(ServiceSettings):
    """How long what a job leaves behind is kept: its output once done, its video once
    failed or cancelled (to retry it meanwhile). The expiry sweep removes them after."""

    #: How long an output (MP3, …) is kept for download, in seconds (default 7 days).
    output_retention_seconds: int = Field(7 * 86400, ge=60)
    #: How long a failed or cancelled job's video is kept for a retry, in seconds (7 days).
    failed_video_retention_seconds: int = Field(7 * 86400, ge=60)

    def output_expiry(self, moment: dt.datetime) -> dt.datetime:
        return moment + dt.timedelta(seconds=self.output_retention_seconds)

    def video_expiry(self, moment: dt.datetime) -> dt.datetime:
        return moment + dt.timedelta(seconds=self.failed_video_retention_seconds)
