"""Prometheus metrics of a consumer (the converter, the notification service), on a port.

Consumers import this module, so it needs the `metrics` extra (prometheus-client) and
nothing else: the Flask services' request metrics are in mp3common.http_metrics.
"""

from __future__ import annotations

import os

from prometheus_client import start_http_server


def serve(port: int | None) -> None:
    """Expose a consumer's metrics on `port` (a thread in the background); None: don't."""
    if port:
        start_http_server(port, addr=os.environ.get("METRICS_ADDRESS", "0.0.0.0"))  # noqa: S104
