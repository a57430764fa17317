"""Prometheus metrics and request ids for the Flask services: requests by route, status and
latency, and the /metrics endpoint. Needs the `http` and `metrics` extras (Flask and
prometheus-client); the consumers import mp3common.metrics, which needs no Flask.

Flask services run several gunicorn workers; with PROMETHEUS_MULTIPROC_DIR set (an emptyDir
in Kubernetes, var/prom/<service> in `make run`) every worker writes its samples there and
/metrics adds them up, so a scrape sees the service, not one worker.

/metrics is answered only on METRICS_PORT (gunicorn binds it beside the service port), so
the public ingress, which routes to the service port, never exposes it.
"""

from __future__ import annotations

import os
import re
import time
import uuid

from flask import Flask, Response, abort, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from .logs import request_id

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["service", "route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["service", "route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


def instrument(app: Flask, service: str, metrics_port: int | None) -> None:
    """Request ids and metrics for a Flask app, and its /metrics endpoint."""

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_id_token = request_id.set(g.request_id)

    @app.after_request
    def _finish(response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        if route != "/metrics":
            HTTP_REQUESTS.labels(service, route, request.method, str(response.status_code)).inc()
            HTTP_LATENCY.labels(service, route, request.method).observe(
                time.perf_counter() - g.get("started", time.perf_counter())
            )
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response

    @app.teardown_request
    def _reset(_exc) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id.reset(token)

    @app.get("/metrics")
    def metrics():
        if metrics_port is None or request.environ.get("SERVER_PORT") != str(metrics_port):
            abort(404)
        return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)
