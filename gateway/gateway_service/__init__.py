"""The gateway: what users talk to. Login is auth's; uploads go to GridFS and the queue."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from mp3common.http import Request, register_error_handlers
from mp3common.http_metrics import instrument
from mp3common.logs import configure_logging

from . import login_limits, tus, views, webpage
from . import settings as settings_module
from .expiry import ExpirySweep
from .outbox import OutboxRelay
from .services import Services


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from `environ` (the process environment when None)."""
    configure_logging("gateway")
    settings = settings_module.load(environ)
    configure_logging("gateway", settings.log_level)
    app = Flask(__name__)
    app.request_class = Request  # unreadable credentials are none, not a 500
    app.config.update(SETTINGS=settings)
    app.extensions["gateway"] = services = Services.build(settings)
    if settings.outbox_relay_interval_seconds:
        OutboxRelay(
            services.storage,
            services.publisher,
            interval_seconds=settings.outbox_relay_interval_seconds,
            older_than_seconds=settings.outbox_relay_age_seconds,
            orphans_older_than_seconds=settings.orphan_upload_age_seconds,
        ).start()
    if interval := settings.expiry_sweep_interval_seconds:
        ExpirySweep(services.storage, interval_seconds=interval).start()
    register_error_handlers(app)
    login_limits.install(app, settings)
    instrument(app, "gateway", settings.metrics_port)
    app.register_blueprint(views.bp)
    app.register_blueprint(tus.bp)  # resumable uploads (tus 1.0)
    app.register_blueprint(webpage.bp)  # the web page at /
    return app
