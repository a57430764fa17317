import base64
import json
import time

import jwt
import pytest
from conftest import TEST_JWT_SECRET, basic

from auth_service import security


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


@pytest.mark.stack
def test_scheme_is_case_insensitive(client, user):
    jwt_text = client.post("/login", headers=basic(*user)).get_data(as_text=True)
    response = client.post("/validate", headers={"Authorization": f"bearer {jwt_text}"})
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
        (f"Bearer {token(uid=1, ver=0, sub='')}", "invalid_token"),
        (f"Bearer {token(uid=1, ver=0, sub='  ')}", "invalid_token"),
        (f"Bearer {token()}", "invalid_token"),
        (f"Bearer {token(uid='1', ver=0)}", "invalid_token"),
        (f"Bearer {token(uid=1, ver=True)}", "invalid_token"),
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
        "empty-sub",
        "blank-sub",
        "no-uid-or-ver",
        "uid-not-int",
        "ver-bool",
    ],
)
def test_every_bad_token_is_a_json_401(client, authorization, error):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post("/validate", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == error
    assert response.get_json()["message"]


# --- tokens end with their account or their password (issue 12, part 8) ------------------


def _login(client, email, password) -> str:
    response = client.post("/login", headers=basic(email, password))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _validate(client, jwt_text):
    return client.post("/validate", headers={"Authorization": f"Bearer {jwt_text}"})


@pytest.mark.stack
def test_a_deleted_users_token_is_refused_at_once(client, user, sql):
    email, password = user
    jwt_text = _login(client, email, password)
    assert _validate(client, jwt_text).status_code == 200
    sql("DELETE FROM user WHERE email = %s", email)
    response = _validate(client, jwt_text)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert "log in again" in response.get_json()["message"]


@pytest.mark.stack
def test_a_password_change_ends_older_tokens_only(client, user, sql):
    email, password = user
    before = _login(client, email, password)
    sql(
        "UPDATE user SET password_hash = %s, token_version = token_version + 1 WHERE email = %s",
        security.hash_password("the new password"),
        email,
    )
    assert _validate(client, before).status_code == 401
    after = _login(client, email, "the new password")
    assert _validate(client, after).status_code == 200


@pytest.mark.stack
def test_an_account_made_again_with_the_same_email_does_not_take_old_tokens(client, user, sql):
    email, password = user
    old = _login(client, email, password)
    sql("DELETE FROM user WHERE email = %s", email)
    sql(
        "INSERT INTO user (email, password_hash) VALUES (%s, %s)",
        email,
        security.hash_password(password),
    )
    assert _validate(client, old).status_code == 401  # same email, version 0, another row
    assert _validate(client, _login(client, email, password)).status_code == 200


@pytest.mark.stack
def test_a_token_naming_another_version_is_refused(client, user):
    email, password = user
    claims = jwt.decode(_login(client, email, password), TEST_JWT_SECRET, algorithms=["HS256"])
    forged_forward = token(sub=email, uid=claims["uid"], ver=claims["ver"] + 1)
    assert _validate(client, forged_forward).status_code == 401
