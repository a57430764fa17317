import base64
import json
import time

import jwt
import pytest
from conftest import TEST_JWT_SECRET, basic


def token(claims=None, secret=TEST_JWT_SECRET, algorithm="HS256", **overrides):
    now = int(time.time())
    body = {"sub": "alice@example.com", "iat": now, "exp": now + 600}
    body.update(claims or {})
    for key, value in overrides.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    return jwt.encode(body, secret, algorithm=algorithm)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_token() -> str:
    """`alg: none`, the classic forgery: no signature at all."""
    now = int(time.time())
    header = _b64({"alg": "none", "typ": "JWT"})
    body = _b64({"sub": "alice@example.com", "iat": now, "exp": now + 600})
    return f"{header}.{body}."


@pytest.mark.stack
def test_a_token_from_login_validates_to_its_claims(client, user):
    email, password = user
    jwt_text = client.post("/login", headers=basic(email, password)).get_data(as_text=True)
    response = client.post("/validate", headers={"Authorization": f"Bearer {jwt_text}"})
    assert response.status_code == 200
    claims = response.get_json()
    assert claims["sub"] == email
    assert claims["exp"] > claims["iat"]


def test_scheme_is_case_insensitive(client):
    response = client.post("/validate", headers={"Authorization": f"bearer {token()}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, "missing_token"),
        ("", "missing_token"),
        ("Bearer", "missing_token"),
        ("Bearer ", "missing_token"),
        ("Bearertoken", "missing_token"),
        ("Basic YWxpY2U6cHc=", "missing_token"),
        ("Bearer garbage", "invalid_token"),
        ("Bearer a.b.c", "invalid_token"),
        (f"Bearer {token(secret='another-secret-another-secret-another-secret')}", "invalid_token"),
        (f"Bearer {token(exp=int(time.time()) - 10)}", "token_expired"),
        (f"Bearer {unsigned_token()}", "invalid_token"),
        (f"Bearer {token(algorithm='HS512')}", "invalid_token"),
        (f"Bearer {token(algorithm='HS384')}", "invalid_token"),
        (f"Bearer {token(sub=None)}", "invalid_token"),
        (f"Bearer {token(exp=None)}", "invalid_token"),
        (f"Bearer {token(iat=None)}", "invalid_token"),
        (f"Bearer {token(sub=42)}", "invalid_token"),
        (f"Bearer {token()}x", "invalid_token"),
    ],
    ids=[
        "none",
        "empty",
        "bearer-alone",
        "bearer-space",
        "no-space",
        "basic",
        "garbage",
        "three-parts",
        "bad-signature",
        "expired",
        "alg-none",
        "hs512",
        "hs384",
        "no-sub",
        "no-exp",
        "no-iat",
        "sub-not-text",
        "tampered",
    ],
)
def test_every_bad_token_is_a_json_401(client, authorization, error):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post("/validate", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == error
    assert response.get_json()["message"]
