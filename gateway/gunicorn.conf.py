"""gunicorn's settings for the gateway, read from this folder by `gunicorn server:app`.

The shared settings (JSON logs, Prometheus multiprocess clean-up) come from
mp3common.gunicorn_conf; what is the gateway's own is the worker. The gateway is what the
ingress exposes, and its clients are slow: a 2 GiB upload over a mobile link takes many
minutes, and anyone can open a connection and send its headers a byte at a time. So the
workers are gevent workers (gateway_service.gunicorn_worker): a connection waiting for its
client costs a greenlet, not a thread, and hundreds of slow clients leave /healthz, /login
and other uploads answering at once (tests/bench/bench_slow_clients.py measures it; the
figures are in README.md). A client must keep moving all the same: its headers within
`keepalive` seconds, its body at least GATEWAY_BODY_MIN_BYTES in every
GATEWAY_BODY_WINDOW_SECONDS, or it is cut off. GATEWAY_WORKERS and
GATEWAY_WORKER_CONNECTIONS size it per deployment.
"""

# First: gevent's sockets, locks and ssl must be what every module below imports (pymongo
# and urllib3 keep their own reference to ssl.SSLContext); the workers inherit it by fork.
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402

from gateway_service.gunicorn_worker import (  # noqa: E402
    BODY_MIN_BYTES,
    BODY_WINDOW_SECONDS,
    GatewayWorker,
)
from gateway_service.settings import load  # noqa: E402
from mp3common.gunicorn_conf import (  # noqa: E402, F401 - gunicorn reads these names from here
    access_log_format,
    accesslog,
    child_exit,
    control_socket_disable,
    logconfig_dict,
    logger_class,
    starting_hook,
)

on_starting = starting_hook(load)

bind = os.environ.get("GATEWAY_BIND", "0.0.0.0:8080").split(",")
worker_class = GatewayWorker.with_floor(
    min_bytes=int(os.environ.get("GATEWAY_BODY_MIN_BYTES", BODY_MIN_BYTES)),
    window_seconds=float(os.environ.get("GATEWAY_BODY_WINDOW_SECONDS", BODY_WINDOW_SECONDS)),
)
workers = int(os.environ.get("GATEWAY_WORKERS", "2"))
# Connections each worker serves at once (a few KiB each while they wait); past that, new
# ones wait in the listen backlog.
worker_connections = int(os.environ.get("GATEWAY_WORKER_CONNECTIONS", "1000"))
# The arbiter's heartbeat timeout, not a request timeout (the gevent loop keeps beating
# while a request waits for its client; a request that blocks the loop itself is a bug).
timeout = 60
graceful_timeout = 30
# The time a client has to send a request's line and headers, and the time a kept-alive
# connection waits for the next request (the gevent worker bounds both with it).
keepalive = 5
