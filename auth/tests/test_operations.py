"""Request ids and metrics: what operators use to follow a request and watch the service."""

import pytest

from auth_service import create_app


def test_a_request_id_is_echoed_or_made(client):
    given = client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert given.headers["X-Request-ID"] == "trace-42"
    made = client.get("/healthz")
    assert len(made.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize("bad", ["x" * 65, "has space", "semi;colon", "<script>"])
def test_an_unsafe_request_id_is_replaced(client, bad):
    response = client.get("/healthz", headers={"X-Request-ID": bad})
    assert response.headers["X-Request-ID"] != bad
    assert len(response.headers["X-Request-ID"]) == 32


def test_metrics_count_requests_by_route_and_status_on_the_metrics_port_only(environ):
    app = create_app({**environ, "METRICS_PORT": "9999"})
    client = app.test_client()
    client.post("/login")  # no credentials: a 401 that needs no database
    assert client.get("/metrics").status_code == 404  # not on the service's own port
    text = client.get("/metrics", base_url="http://localhost:9999").get_data(as_text=True)
    assert 'http_requests_total{method="POST",route="/login",service="auth",status="401"}' in text
    assert "http_request_duration_seconds_bucket" in text
