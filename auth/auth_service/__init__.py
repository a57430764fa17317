"""The auth service: users' passwords in MySQL, JWTs for everyone else to check."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping

from flask import Flask

from mp3common.http import register_error_handlers
from mp3common.http_metrics import instrument
from mp3common.logs import configure_logging

from . import cli, security, users, views
from . import settings as settings_module
from .slots import MemorySlots


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from `environ` (the process environment when None)."""
    configure_logging("auth")
    settings = settings_module.load(environ)
    configure_logging("auth", settings.log_level)
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        MYSQL_HOST=settings.mysql_host,
        MYSQL_PORT=settings.mysql_port,
        MYSQL_USER=settings.mysql_user,
        MYSQL_PASSWORD=settings.mysql_password,
        MYSQL_DB=settings.mysql_db,
        MYSQL_CONNECT_TIMEOUT=settings.mysql_connect_timeout_seconds,
        MYSQL_CHARSET="utf8mb4",
        MYSQL_CUSTOM_OPTIONS={"read_timeout": 10, "write_timeout": 10},
    )
    users.mysql.init_app(app)
    security.return_argon2_memory_when_done()
    app.extensions["auth_slots"] = MemorySlots(
        settings.login_verify_slots,
        security.MEMORY_COST_KIB,
        # gunicorn's workers are children of one arbiter: they share this file.
        os.path.join(tempfile.gettempdir(), f"mp3converter-auth-{os.getppid()}-argon2.lock"),
    )
    register_error_handlers(app)
    instrument(app, "auth", settings.metrics_port)
    app.register_blueprint(views.bp)
    app.register_blueprint(cli.bp)
    return app
