"""A refused login is logged with its client and a keyed hash of the account (issue 15):
enough to see repeated guessing at one account, never the email or the password."""

import hashlib
import hmac
import json
import logging

import pytest

from gateway_service.login_limits import account_key
from gateway_service.settings import DEV_LOG_ACCOUNT_KEY, load
from mp3common.settings import SettingsError

A, B = "203.0.113.7", "198.51.100.9"
KEY = "k" * 40


def login(client, email, password, address=A):
    return client.post("/login", auth=(email, password), environ_base={"REMOTE_ADDR": address})


def refusals(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "login_refused"]


def expected(email: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()[:32]


def test_a_wrong_password_logs_the_client_and_the_account_s_keyed_hash(make_app, alice, caplog):
    client = make_app(LOG_ACCOUNT_KEY=KEY).test_client()
    with caplog.at_level(logging.INFO):
        assert login(client, f" {alice.email.upper()}", "wrong-guess-1").status_code == 401
        assert login(client, alice.email, "wrong-guess-2", address=B).status_code == 401
        assert login(client, alice.email, alice.password).status_code == 200
    first, second = refusals(caplog)
    assert (first.client, first.account, first.status) == (A, expected(alice.email), 401)
    # Another place, the same account: the same value, so the guesses line up.
    assert (second.client, second.account) == (B, first.account)
    text = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert alice.email not in text and alice.email.upper() not in text
    assert "wrong-guess" not in text


def test_a_refusal_by_the_limits_is_logged_too(make_app, alice, caplog):
    client = make_app(LOG_ACCOUNT_KEY=KEY, LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS="1/minute")
    client = client.test_client()
    with caplog.at_level(logging.INFO):
        login(client, alice.email, "guess")
        assert login(client, alice.email, "guess").status_code == 429
    assert [(r.status, r.account) for r in refusals(caplog)] == [
        (401, expected(alice.email)),
        (429, expected(alice.email)),
    ]


def test_a_login_without_credentials_is_logged_without_an_account(make_app, caplog):
    client = make_app(LOG_ACCOUNT_KEY=KEY).test_client()
    with caplog.at_level(logging.INFO):
        assert client.post("/login", environ_base={"REMOTE_ADDR": A}).status_code == 401
    (record,) = refusals(caplog)
    assert (record.client, record.account) == (A, "-")


def test_the_client_is_the_address_the_ingress_reports(make_app, alice, caplog):
    client = make_app(LOG_ACCOUNT_KEY=KEY, TRUSTED_PROXY_HOPS="1").test_client()
    with caplog.at_level(logging.INFO):
        client.post(
            "/login",
            auth=(alice.email, "guess"),
            environ_base={"REMOTE_ADDR": "10.0.0.5"},  # the ingress controller
            headers={"X-Forwarded-For": "6.6.6.6, 192.0.2.44"},  # made up, then the ingress's
        )
    (record,) = refusals(caplog)
    assert record.client == "192.0.2.44"


def test_without_the_key_the_hash_tells_nothing():
    """Another key, another value: a guessed email cannot be checked against the logs."""
    from werkzeug.datastructures import Authorization

    credentials = Authorization("basic", {"username": "a@example.com", "password": "x"})
    assert account_key(KEY.encode(), credentials) != account_key(b"x" * 40, credentials)
    assert (
        account_key(KEY.encode(), credentials) != hashlib.sha256(b"a@example.com").hexdigest()[:32]
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("short", "LOG_ACCOUNT_KEY must be at least 32 bytes"),
        (DEV_LOG_ACCOUNT_KEY, "LOG_ACCOUNT_KEY is the development default"),
    ],
)
def test_production_refuses_a_weak_or_published_key(environ, value, says):
    with pytest.raises(SettingsError, match=says):
        load(
            {
                **environ,
                "APP_ENV": "production",
                "TRUSTED_PROXY_HOPS": "1",
                "LOG_ACCOUNT_KEY": value,
            }
        )
