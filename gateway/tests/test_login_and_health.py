"""POST /login through to auth; /healthz and /readyz; the settings' refusals."""

import time

import pytest

from gateway_service.settings import load
from mp3common.settings import SettingsError


def test_login_passes_the_jwt_through_as_text(client, alice, fake_auth):
    response = client.post("/login", auth=(alice.email, alice.password))
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    token = response.get_data(as_text=True)
    assert token.count(".") == 2
    assert fake_auth.tokens[token] == alice.email  # auth's own token, passed through as is


@pytest.mark.parametrize(
    ("auth", "error"),
    [(None, "missing_credentials"), (("nobody@example.com", "wrong"), "invalid_credentials")],
)
def test_login_refusals_are_auths_own_answers(client, auth, error):
    response = client.post("/login", auth=auth)
    assert response.status_code == 401
    assert response.get_json()["error"] == error
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("address", ["unreachable", "silent"])
def test_login_with_auth_down_or_hung_is_a_quick_503(make_app, alice, silent_port, address):
    port = 1 if address == "unreachable" else silent_port
    client = make_app(AUTH_SVC_ADDRESS=f"127.0.0.1:{port}", AUTH_TIMEOUT_SECONDS="1").test_client()
    started = time.monotonic()
    response = client.post("/login", auth=(alice.email, alice.password))
    assert response.status_code == 503
    assert response.get_json()["error"] == "auth_unavailable"
    assert time.monotonic() - started < 5


def test_a_request_id_is_echoed(client):
    assert (
        client.get("/healthz", headers={"X-Request-ID": "trace-7"}).headers["X-Request-ID"]
        == "trace-7"
    )


def test_healthz_needs_nothing(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


@pytest.mark.stack
def test_readiness(client):
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"auth": "ok", "mongodb": "ok", "rabbitmq": "ok"}


def test_not_ready_names_what_is_missing(make_app):
    client = make_app(
        MONGODB_URI="mongodb://127.0.0.1:1/?directConnection=true",
        MONGODB_TIMEOUT_MS="300",
        RABBITMQ_URL="amqp://guest:guest@127.0.0.1:1/%2F",
        RABBITMQ_TIMEOUT_SECONDS="1",
    ).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["error"] == "not_ready"
    assert response.get_json()["checks"] == {
        "auth": "ok",
        "mongodb": "unavailable",
        "rabbitmq": "unavailable",
    }


# --- settings ----------------------------------------------------------------------------


def test_development_defaults_fit_the_dev_stack():
    settings = load({"APP_ENV": "development"})
    assert settings.auth_url == "http://127.0.0.1:5000"
    assert settings.video_queue == "video"
    assert settings.max_upload_bytes == 2 * 1024**3
    assert settings.mongodb_db == "mp3converter"


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("auth:5000", "http://auth:5000"),
        ("http://auth:5000/", "http://auth:5000"),
        ("https://auth.internal", "https://auth.internal"),
    ],
)
def test_auth_address_as_the_reference_had_it_or_a_url(address, url):
    assert load({"AUTH_SVC_ADDRESS": address}).auth_url == url


def test_production_requires_every_address_in_one_line():
    with pytest.raises(SettingsError) as error:
        load({"APP_ENV": "production"})
    message = str(error.value)
    assert "\n" not in message
    for name in ("AUTH_SVC_ADDRESS", "MONGODB_URI", "RABBITMQ_URL"):
        assert f"{name} is not set" in message


def test_production_refuses_the_guest_broker_account():
    with pytest.raises(SettingsError, match="RABBITMQ_URL is the development default"):
        load(
            {
                "APP_ENV": "production",
                "AUTH_SVC_ADDRESS": "auth:5000",
                "MONGODB_URI": "mongodb://mongo:27017",
                "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
            }
        )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MAX_UPLOAD_BYTES", "2GB", "valid integer"),
        ("MAX_UPLOAD_BYTES", "0", "greater than or equal to 1"),
        ("AUTH_TIMEOUT_SECONDS", "soon", "number"),
        ("AUTH_SVC_ADDRESS", "ftp://auth", "AUTH_SVC_ADDRESS"),
        ("MONGODB_URI", "127.0.0.1:27017", "MONGODB_URI"),
        ("RABBITMQ_URL", "127.0.0.1:5672", "RABBITMQ_URL"),
    ],
)
def test_bad_values_are_refused_at_start(name, value, says):
    with pytest.raises(SettingsError, match=says):
        load({name: value})
