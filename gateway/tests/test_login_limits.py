"""POST /login's rate limits: per client address, per account from one address (issue 12,
part 4), and which address counts as the client's (TRUSTED_PROXY_HOPS)."""

import time
from types import SimpleNamespace

import pytest
from conftest import serving
from flask import Flask, jsonify

from gateway_service.settings import load
from mp3common.settings import SettingsError

A, B = "203.0.113.7", "198.51.100.9"


def login(client, email, password, address=A, **headers):
    return client.post(
        "/login",
        auth=(email, password),
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


def refused(response, *, says: str) -> int:
    """Check a 429 is the documented one; the seconds it says to wait."""
    assert response.status_code == 429
    body = response.get_json()
    assert body["error"] == "too_many_logins"
    assert says in body["message"]
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= 60
    assert body["retry_after_seconds"] == seconds
    assert f"{seconds} s" in body["message"]
    return seconds


def test_a_flood_on_one_account_from_one_address_does_not_lock_its_owner_out(make_app, alice):
    client = make_app(
        LOGIN_LIMIT_PER_ADDRESS="100/minute", LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS="3/minute"
    ).test_client()
    for _ in range(3):
        assert login(client, alice.email, "guess").status_code == 401
    refused(login(client, alice.email, "guess"), says="for this account from your address")
    # The right password from the same place waits too: the pair is spent, not the guesses.
    assert login(client, alice.email, alice.password).status_code == 429
    # Its owner, from elsewhere, is not counted against the attacker's allowance.
    assert login(client, alice.email, alice.password, address=B).status_code == 200
    # And the attacker's address may still log in to other accounts (its own limit is high).
    assert login(client, "someone@example.com", "guess").status_code == 401


def test_the_account_is_counted_as_auth_reads_it(make_app, alice):
    client = make_app(LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS="2/minute").test_client()
    for spelling in (alice.email, f"  {alice.email.upper()} "):
        login(client, spelling, "guess")
    assert login(client, alice.email.title(), "guess").status_code == 429


def test_one_address_is_limited_whatever_accounts_it_tries(make_app, alice):
    client = make_app(
        LOGIN_LIMIT_PER_ADDRESS="3/minute", LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS="100/minute"
    ).test_client()
    for n in range(3):
        assert login(client, f"user{n}@example.com", "guess").status_code == 401
    refused(login(client, "user9@example.com", "guess"), says="from your address")
    assert login(client, alice.email, alice.password, address=B).status_code == 200


def test_logins_without_credentials_count_too(make_app):
    client = make_app(LOGIN_LIMIT_PER_ADDRESS="2/minute").test_client()
    for _ in range(2):
        assert client.post("/login", environ_base={"REMOTE_ADDR": A}).status_code == 401
    assert client.post("/login", environ_base={"REMOTE_ADDR": A}).status_code == 429


def test_other_endpoints_are_not_limited(make_app):
    client = make_app(LOGIN_LIMIT_PER_ADDRESS="1/minute").test_client()
    for _ in range(5):
        assert client.get("/healthz", environ_base={"REMOTE_ADDR": A}).status_code == 200


# --- whose address: X-Forwarded-For only as far as TRUSTED_PROXY_HOPS says ----------------


def test_without_trusted_proxies_a_forwarded_header_is_ignored(make_app, alice):
    client = make_app(
        TRUSTED_PROXY_HOPS="0", LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS="2/minute"
    ).test_client()
    for n in range(2):
        login(client, alice.email, "guess", **{"X-Forwarded-For": f"10.0.0.{n}"})
    # A new made-up address each time does not buy a new allowance.
    response = login(client, alice.email, "guess", **{"X-Forwarded-For": "10.0.0.99"})
    assert response.status_code == 429


def test_behind_the_ingress_the_address_it_appended_is_the_clients(make_app, alice):
    client = make_app(
        TRUSTED_PROXY_HOPS="1", LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS="2/minute"
    ).test_client()
    ingress = "10.244.0.5"  # every request reaches the gateway from the ingress pod
    for n in range(2):
        # The client wrote its own X-Forwarded-For; the ingress appended the real address.
        forwarded = {"X-Forwarded-For": f"1.2.3.{n}, {A}"}
        assert login(client, alice.email, "guess", address=ingress, **forwarded).status_code == 401
    spoofed = {"X-Forwarded-For": f"1.2.3.99, {A}"}
    assert login(client, alice.email, "guess", address=ingress, **spoofed).status_code == 429
    # Another client behind the same ingress has its own allowance.
    other = {"X-Forwarded-For": B}
    assert login(client, alice.email, alice.password, address=ingress, **other).status_code == 200


# --- auth's own refusal under load, passed through --------------------------------------


def test_auths_busy_answer_reaches_the_client_with_its_retry_after(make_app):
    busy = Flask("busy_auth")

    @busy.post("/login")
    def _busy():
        body = {"error": "busy", "message": "Too many logins at once; try again in a moment."}
        return jsonify(body), 503, {"Retry-After": "1"}

    with serving(busy) as port:
        client = make_app(AUTH_SVC_ADDRESS=f"127.0.0.1:{port}").test_client()
        response = login(client, "someone@example.com", "pw")
    assert response.status_code == 503
    assert response.get_json()["error"] == "busy"
    assert response.headers["Retry-After"] == "1"


# --- shared by every replica ------------------------------------------------------------


@pytest.mark.stack
def test_replicas_count_the_same_logins_in_mongodb(make_app, alice, database):
    limits = {"LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS": "3/minute"}
    first, second = (make_app(**limits).test_client() for _ in range(2))
    for client in (first, second, first):
        assert login(client, alice.email, "guess").status_code == 401
    refused(login(second, alice.email, "guess"), says="for this account")
    assert database["login_limit_windows"].count_documents({}) >= 2
    assert alice.email not in str(list(database["login_limit_windows"].find()))


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOGIN_LIMIT_PER_ADDRESS", "lots"),
        ("LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS", "10 per fortnight"),
        ("TRUSTED_PROXY_HOPS", "-1"),
        ("LOGIN_LIMIT_STORAGE", "redis"),
    ],
)
def test_bad_limit_settings_are_refused(name, value):
    with pytest.raises(SettingsError, match=name):
        load({name: value})


def test_production_must_say_how_many_proxies_it_trusts():
    with pytest.raises(SettingsError, match="TRUSTED_PROXY_HOPS is not set"):
        load({"APP_ENV": "production"})


def test_a_refusal_is_delayed_only_where_waiting_costs_a_greenlet(make_app, monkeypatch):
    from gateway_service import login_limits

    app = make_app(LOGIN_LIMIT_PER_ADDRESS="1/minute")
    limits = app.extensions["login_limits"]
    assert limits.refusal_delay_seconds == 0  # threads here: a delay would hold one
    slept = []
    monkeypatch.setattr(limits, "refusal_delay_seconds", login_limits.REFUSAL_DELAY_SECONDS)
    # The module's own clock only: pymongo's monitor threads sleep too, meanwhile.
    clock = SimpleNamespace(sleep=slept.append, time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr(login_limits, "time", clock)
    client = app.test_client()
    assert client.post("/login", environ_base={"REMOTE_ADDR": A}).status_code == 401
    assert client.post("/login", environ_base={"REMOTE_ADDR": A}).status_code == 429
    assert slept == [login_limits.REFUSAL_DELAY_SECONDS]


def test_credentials_werkzeug_cannot_read_count_as_no_account(make_app):
    client = make_app(LOGIN_LIMIT_PER_ADDRESS="1/minute").test_client()
    unreadable = {"Authorization": "Basic \u00e9\u00e9\u00e9"}  # found by the fuzz: was a 500
    first = client.post("/login", headers=unreadable, environ_base={"REMOTE_ADDR": A})
    assert first.status_code != 500
    second = client.post("/login", headers=unreadable, environ_base={"REMOTE_ADDR": A})
    assert second.status_code == 429
