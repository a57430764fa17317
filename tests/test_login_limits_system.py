"""Login floods and ended tokens on the stack `make run` started (issue 12, parts 4 and 8).

The gateway counts logins per client address and per account from one address, in
MongoDB; the dev stack trusts no proxy (TRUSTED_PROXY_HOPS=0), so the client address is the
connection's own. Each test floods from a loopback address of its own and never spends
127.0.0.1's allowance. Users are made, given new passwords and removed with auth's CLI.
"""

from __future__ import annotations

import os

import MySQLdb
import pytest
from conftest import GATEWAY_URL

from mp3testing.logins import basic, login_from, random_loopback, request_from
from mp3testing.users import delete_user, set_password

pytestmark = pytest.mark.stack

#: The gateway's LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS on the dev stack: 10/minute.
PAIR_LIMIT = 10


def spend_the_pair_limit(address: str, email: str):
    """Wrong passwords for `email` from `address` until the gateway refuses: that answer."""
    for _ in range(PAIR_LIMIT):
        assert login_from(address, GATEWAY_URL, email, "not the password").status == 401
    return login_from(address, GATEWAY_URL, email, "not the password")


def test_a_flood_on_an_account_is_refused_and_its_owner_logs_in_from_elsewhere(new_user):
    email, password = new_user("flooded")
    attacker, owner = random_loopback(), random_loopback()
    refused = spend_the_pair_limit(attacker, email)
    assert refused.status == 429
    assert refused.headers["Content-Type"].startswith("application/json")
    body = refused.json()
    assert body["error"] == "too_many_logins"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert body["retry_after_seconds"] == int(refused.headers["Retry-After"])
    # Even the right password waits, from there; from the owner's own place it goes through.
    assert login_from(attacker, GATEWAY_URL, email, password).status == 429
    token = login_from(owner, GATEWAY_URL, email, password)
    assert token.status == 200 and token.text.count(".") == 2


def test_a_made_up_forwarded_for_buys_no_new_allowance(new_user):
    email, _ = new_user("spoofer")
    attacker = random_loopback()
    assert spend_the_pair_limit(attacker, email).status == 429
    spoofed = request_from(
        attacker,
        "POST",
        f"{GATEWAY_URL}/login",
        headers={**basic(email, "guess"), "X-Forwarded-For": random_loopback()},
    )
    assert spoofed.status == 429


# --- ended tokens: a deleted user, a changed password --------------------------------------


def jobs_with(token: str):
    return request_from(
        random_loopback(),
        "GET",
        f"{GATEWAY_URL}/jobs",
        headers={"Authorization": f"Bearer {token}"},
    )


def delete_with_sql(email: str) -> None:
    """As an operator at the database would: the row goes, nothing else is told."""
    connection = MySQLdb.connect(
        host=os.environ.get("MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("MYSQL_PORT", "3306")),
        user=os.environ["MYSQL_USER"],
        passwd=os.environ["MYSQL_PASSWORD"],
        db=os.environ["MYSQL_DB"],
    )
    try:
        connection.cursor().execute("DELETE FROM user WHERE email = %s", (email,))
        connection.commit()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "end",
    [
        pytest.param(delete_user, id="deleted-with-the-cli"),
        pytest.param(delete_with_sql, id="deleted-with-sql"),
        pytest.param(lambda email: set_password(email, "a brand new password"), id="new-password"),
    ],
)
def test_a_token_ends_with_its_user_or_their_password(new_user, end):
    email, password = new_user("ended")
    token = login_from(random_loopback(), GATEWAY_URL, email, password).text
    assert jobs_with(token).status == 200
    end(email)
    refused = jobs_with(token)
    assert refused.status == 401
    assert refused.json()["error"] == "invalid_token"


def test_after_a_new_password_only_new_tokens_work(new_user):
    email, password = new_user("renewed")
    old = login_from(random_loopback(), GATEWAY_URL, email, password).text
    set_password(email, "a brand new password")
    assert login_from(random_loopback(), GATEWAY_URL, email, password).status == 401
    new = login_from(random_loopback(), GATEWAY_URL, email, "a brand new password")
    assert new.status == 200
    assert jobs_with(new.text).status == 200
    assert jobs_with(old).status == 401
