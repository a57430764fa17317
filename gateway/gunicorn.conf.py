"""gunicorn's settings for the gateway, read from this folder by `gunicorn server:app`.

The shared settings (JSON logs, Prometheus multiprocess clean-up) come from
mp3common.gunicorn_conf; what is the gateway's own is the worker type. Uploads are long
(2 GiB over a slow link takes many minutes), so workers are threaded (gthread): a thread
per request, while the worker's main loop keeps answering the arbiter's heartbeat. A sync
worker would be killed, upload and all, once a request outlasted `timeout`. An upload
costs a few MiB (the body goes straight to GridFS), so threads are cheap;
GATEWAY_WORKERS and GATEWAY_THREADS size it per deployment.
"""

import os

from gateway_service.settings import load
from mp3common.gunicorn_conf import (  # noqa: F401 - gunicorn reads these names from here
    access_log_format,
    accesslog,
    child_exit,
    control_socket_disable,
    logconfig_dict,
    starting_hook,
)

on_starting = starting_hook(load)

bind = os.environ.get("GATEWAY_BIND", "0.0.0.0:8080").split(",")
worker_class = "gthread"
workers = int(os.environ.get("GATEWAY_WORKERS", "2"))
threads = int(os.environ.get("GATEWAY_THREADS", "8"))
# The arbiter's heartbeat timeout, not a request timeout (a gthread worker keeps beating).
timeout = 60
graceful_timeout = 30
keepalive = 5
