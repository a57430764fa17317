"""The auth service as `make run` runs it (gunicorn, MariaDB, the seeded dev user)."""

import json
import socket
from urllib.parse import urlsplit

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


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: y\r\n" % n for n in range(120))
            + b"\r\n",
            "431 Request Header Fields Too Large",
            "request_header_fields_too_large",
        ),
        (b"NONSENSE\r\n\r\n", "400 Bad Request", "bad_request"),
    ],
    ids=["too-many-headers", "no-request-line"],
)
def test_gunicorns_own_refusals_are_json_at_auth_too(data, status, error):
    """As at the gateway (tests/test_gateway_faults.py): the shared gunicorn config."""
    address = urlsplit(AUTH_URL)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.decode("latin-1").split("\r\n")[0] == f"HTTP/1.1 {status}"
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["error"] == error
