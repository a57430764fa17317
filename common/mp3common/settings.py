"""Reading a service's settings from the environment, once, with every problem reported.

Each service has one settings module that builds a frozen dataclass through `Env`.
`Env` collects every problem instead of stopping at the first, so that a broken
deployment is told everything wrong with it in one line, and it knows the rule every
service shares: a development default is allowed (and logged loudly) in development,
and refused in production (`APP_ENV=production`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import NoReturn
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

_NO_DEFAULT = object()

#: What the committed Kubernetes secret.yaml files hold until `make k8s-secrets` fills
#: them in; a value containing it never runs in production.
PLACEHOLDER = "CHANGE-ME"

#: RabbitMQ's own guest account on this machine: what `make run` gives every service.
DEV_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


class SettingsError(RuntimeError):
    """The environment cannot run the service; the message says every reason."""


#: The exit code after which gunicorn's arbiter stops ("App failed to load",
#: gunicorn.arbiter.Arbiter.APP_LOAD_ERROR) instead of starting worker after worker.
APP_LOAD_ERROR = 4


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


class Env:
    """A read-once view of the environment that records what is wrong with it."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self.problems: list[str] = []
        self.dev_defaults: list[str] = []
        app_env = self._environ.get("APP_ENV", "development").strip().lower()
        if app_env not in ("development", "production"):
            self.problems.append(f"APP_ENV must be development or production, not {app_env!r}")
        self.production = app_env == "production"

    def text(
        self,
        name: str,
        default: object = _NO_DEFAULT,
        *,
        dev_default: str | None = None,
        secret: bool = False,
    ) -> str:
        """A string setting.

        `default` is a safe value for any environment; `dev_default` is one that is only
        acceptable on a developer's machine (localhost, a throwaway secret), so production
        requires the setting; for a `secret`, production also refuses that exact value.
        """
        value = self._environ.get(name, "").strip()
        if value:
            if self.production and PLACEHOLDER in value:
                self.problems.append(f"{name} is a placeholder ({PLACEHOLDER}); set a real value")
            elif self.production and secret and value == dev_default:
                self.problems.append(f"{name} is the development default; set a real value")
            return value
        if default is not _NO_DEFAULT:
            return str(default)
        if dev_default is not None and not self.production:
            self.dev_defaults.append(name)
            return dev_default
        self.problems.append(f"{name} is not set")
        return ""

    def amqp_url(self, name: str) -> str:
        """The RabbitMQ URL, under the one rule every service follows.

        Development falls back to the broker `make run` starts, as guest. Production
        needs the URL set, and refuses RabbitMQ's guest account, whether named or implied
        (a URL without a user is guest to pika): it is the broker's well-known default,
        and the cluster's broker lets guest in from its own pod only.
        """
        before = len(self.problems)
        url = self.text(name, dev_default=DEV_RABBITMQ_URL, secret=True)
        if len(self.problems) > before or not url:
            return url  # already told: not set, a placeholder, or the development default
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            self.problems.append(f"{name} must be an amqp:// or amqps:// URL")
        elif self.production and unquote(parts.username or "guest") == "guest":
            self.problems.append(
                f"{name} logs in as RabbitMQ's guest account; give the service a user of its own"
            )
        return url

    def integer(
        self,
        name: str,
        default: int | None = None,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        dev_default: int | None = None,
    ) -> int:
        raw = self._environ.get(name, "").strip()
        if not raw:
            if default is not None:
                return default
            if dev_default is not None and not self.production:
                self.dev_defaults.append(name)
                return dev_default
            self.problems.append(f"{name} is not set")
            return 0
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number, not {raw!r}")
            return 0
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            self.problems.append(f"{name} must be between {minimum} and {maximum}, not {value}")
        return value

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name} must be a number, not {raw!r}")
            return default
        if value < minimum:
            self.problems.append(f"{name} must be at least {minimum}, not {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self._environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false, not {raw!r}")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._environ.get(name, "").strip().lower() or default
        if value not in choices:
            self.problems.append(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def finish(self, service: str) -> None:
        """Raise with every problem at once; warn loudly about development defaults."""
        if self.problems:
            raise SettingsError(f"{service} cannot start: " + "; ".join(self.problems))
        if self.dev_defaults:
            log.warning(
                "DEVELOPMENT DEFAULTS IN USE for %s: %s — never run this way in production "
                "(APP_ENV=production refuses them)",
                service,
                ", ".join(self.dev_defaults),
            )
