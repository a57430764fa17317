"""gunicorn settings the Flask services share, imported by each one's gunicorn.conf.py.

gunicorn's own lines (start, worker boot, access log) come out as JSON lines like the
services' logs, and the Prometheus multiprocess files of a dead worker are released.
"""

import os
from collections.abc import Callable

from gunicorn.glogging import Logger
from prometheus_client import multiprocess

from .gunicorn_refusals import install as _install_json_refusals
from .settings import SettingsError, refuse_to_start

# gunicorn 25.1+ opens a control socket for `gunicornc` under $XDG_RUNTIME_DIR or
# ~/.gunicorn; in a container the home does not exist and the root filesystem is read-only,
# so every start logged an error. Kubernetes (or `make run`) manages the process instead.
control_socket_disable = True
accesslog = "-"
# %(h)s is the client's address: REMOTE_ADDR after the gateway's ProxyFix (TRUSTED_PROXY_HOPS)
# has put there the address the ingress reports, which it does in place, before this line.
access_log_format = "%(h)s %(m)s %(path)s %(s)s %(B)s bytes %(M)s ms rid=%({x-request-id}o)s"


class AccessLogger(Logger):
    """gunicorn's logger with one more access-log atom, `path`: the path and, when there is
    one, `?` and the query (gunicorn's `%(U)s%(q)s` ran them together: `/statusfid=…`)."""

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        query = atoms.get("q")
        atoms["path"] = f"{atoms.get('U')}?{query}" if query else atoms.get("U")
        return atoms


logger_class = AccessLogger
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "{asctime}{levelname}{name}{message}",
            "style": "{",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        }
    },
    # The services attach their own JSON handler to the root logger (mp3common.logs).
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        # The settings are read in the arbiter too (starting_hook), before a service's own
        # logging exists: its warning (development defaults) is a JSON line as well.
        "mp3common.settings": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}


def starting_hook(load_settings: Callable[[], object]) -> Callable:
    """gunicorn's `on_starting` for a service whose settings `load_settings` reads.

    In the arbiter, before any worker: the settings are read once, and bad ones stop
    gunicorn with one line and exit code 4 (`refuse_to_start`). Left to the workers, each
    would fail alone, and two failing at once make gunicorn's own shutdown trip over the
    second ("HaltServer" in a traceback). Then, as a restarted container keeps its
    emptyDir, the previous run's metric samples are dropped.
    """

    def on_starting(server) -> None:
        try:
            load_settings()
        except SettingsError as error:
            refuse_to_start(error)
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory and os.path.isdir(directory):
            for name in os.listdir(directory):
                if name.endswith(".db"):
                    os.remove(os.path.join(directory, name))

    return on_starting


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


# gunicorn's own refusals (414, 431, a malformed request: 400) in the JSON shape of every
# other answer; patched in the arbiter, so every worker it forks has it.
_install_json_refusals()
