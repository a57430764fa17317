"""The auth service as `make run` runs it (gunicorn, MariaDB, the seeded dev user)."""

import json

import pytest
from conftest import AUTH_URL, curl

pytestmark = pytest.mark.stack  # drives the stack make run started


def test_the_reference_login_curl_returns_a_jwt_that_validate_accepts():
    token = curl("-X", "POST", "-u", "assylbek@email.com:Admin123", f"{AUTH_URL}/login").stdout
    assert token.count(".") == 2
    claims = json.loads(
        curl("-X", "POST", "-H", f"Authorization: Bearer {token}", f"{AUTH_URL}/validate").stdout
    )
    assert claims["sub"] == "assylbek@email.com"


def test_a_user_made_with_the_cli_can_log_in_and_a_wrong_password_cannot(new_user):
    email, password = new_user()
    ok = curl(
        "-X", "POST", "-u", f"{email}:{password}", "-w", "\n%{http_code}", f"{AUTH_URL}/login"
    ).stdout
    assert ok.rsplit("\n", 1)[1] == "200"
    bad = curl(
        "-X", "POST", "-u", f"{email}:nope", "-w", "\n%{http_code}", f"{AUTH_URL}/login"
    ).stdout
    body, status = bad.rsplit("\n", 1)
    assert status == "401"
    assert json.loads(body)["error"] == "invalid_credentials"


def test_health_and_readiness():
    assert json.loads(curl(f"{AUTH_URL}/healthz").stdout) == {"status": "ok"}
    assert json.loads(curl(f"{AUTH_URL}/readyz").stdout) == {"status": "ready"}
