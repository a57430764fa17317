"""The running gateway's logs name who tried what (issue 15): every access line carries the
client's address, and a refused login its client and HMAC(LOG_ACCOUNT_KEY, email) —
never the email or the password. Read from var/log/gateway.log, as an operator would."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid

import pytest
import requests
from conftest import GATEWAY_URL, ROOT

from mp3testing import wait_until
from mp3testing.logins import login_from, random_loopback

pytestmark = pytest.mark.stack

LOG = ROOT / "var" / "log" / "gateway.log"


def lines_after(offset: int) -> list[dict]:
    with LOG.open("rb") as log:
        log.seek(offset)
        found = []
        for raw in log.read().splitlines():
            try:
                found.append(json.loads(raw))
            except ValueError:
                continue
        return found


def test_guesses_at_one_account_show_up_with_their_clients(new_user):
    email, password = new_user()
    guess = f"guess-{uuid.uuid4().hex}"
    first, second = random_loopback(), random_loopback()
    offset = LOG.stat().st_size
    assert login_from(first, GATEWAY_URL, email, guess).status == 401
    assert login_from(second, GATEWAY_URL, email.upper(), guess).status == 401
    assert login_from(first, GATEWAY_URL, email, password).status == 200
    key = os.environ["LOG_ACCOUNT_KEY"].encode()
    account = hmac.new(key, email.lower().encode(), hashlib.sha256).hexdigest()[:32]

    def refusals():
        return [line for line in lines_after(offset) if line.get("event") == "login_refused"
                and line.get("client") in (first, second)]  # fmt: skip

    found = wait_until(lambda: len(refusals()) == 2 and refusals())
    assert [(line["client"], line["account"], line["status"]) for line in found] == [
        (first, account, 401),
        (second, account, 401),
    ]
    text = LOG.read_text()[offset:]
    assert email not in text and email.upper() not in text and guess not in text


def test_the_access_log_carries_the_client_address():
    client = random_loopback()
    offset = LOG.stat().st_size
    assert login_from(client, GATEWAY_URL, "nobody@example.com", "x").status == 401

    def access():
        lines = lines_after(offset)
        return [m["message"] for m in lines if m.get("logger") == "gunicorn.access"]

    # Its own line: an earlier test's may be written after the offset was taken.
    found = wait_until(lambda: [m for m in access() if m.startswith(f"{client} ")])
    assert any(m.startswith(f"{client} POST /login 401 ") for m in found), found


def test_an_access_line_keeps_the_query_apart_from_the_path():
    """gunicorn's %(U)s%(q)s ran them together (`/statusfid=…`): the line now has the path
    as it was asked for."""
    offset = LOG.stat().st_size
    requests.get(f"{GATEWAY_URL}/status", params={"fid": "abc"}, timeout=10)

    def access():
        lines = lines_after(offset)
        return [m["message"] for m in lines if m.get("logger") == "gunicorn.access"]

    found = wait_until(lambda: [m for m in access() if "fid=abc" in m])
    assert any(" GET /status?fid=abc 401 " in m for m in found), found
