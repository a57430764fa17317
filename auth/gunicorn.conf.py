"""gunicorn's settings for auth, read from this folder by `gunicorn server:app`.

The shared settings (JSON logs, no control socket, Prometheus multiprocess clean-up, the
settings checked in the arbiter before any worker starts) come from
mp3common.gunicorn_conf; the bind addresses and worker counts are on the command line
(the Dockerfile's CMD, dev/supervisord.conf).
"""

from auth_service.settings import load
from mp3common.gunicorn_conf import (  # noqa: F401 - gunicorn reads these names from here
    access_log_format,
    accesslog,
    child_exit,
    control_socket_disable,
    logconfig_dict,
    logger_class,
    starting_hook,
)

on_starting = starting_hook(load)
