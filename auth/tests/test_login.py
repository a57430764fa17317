import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import argon2
import jwt
import pytest
from conftest import TEST_JWT_SECRET, basic

from auth_service import create_app, security
from auth_service.slots import Busy, MemorySlots


@pytest.mark.stack
def test_good_login_returns_a_jwt_for_the_user(client, user):
    email, password = user
    response = client.post("/login", headers=basic(email, password))
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    claims = jwt.decode(response.get_data(as_text=True), TEST_JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == email
    assert claims["exp"] - claims["iat"] == 86400
    assert "admin" not in claims


@pytest.mark.stack
def test_email_is_case_insensitive(client, user):
    email, password = user
    response = client.post("/login", headers=basic(email.upper(), password))
    assert response.status_code == 200


@pytest.mark.stack
def test_wrong_password_and_unknown_user_get_the_same_answer(client, user):
    email, password = user
    wrong = client.post("/login", headers=basic(email, password + "x"))
    unknown = client.post("/login", headers=basic("nobody@example.com", password))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["error"] == "invalid_credentials"
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")


class _CountingHasher:
    """argon2's hasher, remembering the hash each verification ran against."""

    def __init__(self, hasher):
        self._hasher = hasher
        self.verified: list[str] = []

    def verify(self, password_hash, password):
        self.verified.append(password_hash)
        return self._hasher.verify(password_hash, password)


@pytest.mark.stack
def test_unknown_user_costs_as_much_as_a_wrong_password(client, user, monkeypatch):
    """Without the dummy hash an unknown email answers ~50x faster: an account oracle. What
    costs the time is one argon2 verification; both answers must run one, at the same cost
    (the same argon2 parameters), whatever the machine's speed."""
    email, _ = user
    hasher = _CountingHasher(security._hasher)
    monkeypatch.setattr(security, "_hasher", hasher)

    def verifications(name):
        hasher.verified.clear()
        assert client.post("/login", headers=basic(name, "wrong password")).status_code == 401
        return list(hasher.verified)

    [wrong], [unknown] = verifications(email), verifications("nobody@example.com")
    assert argon2.extract_parameters(unknown) == argon2.extract_parameters(wrong)
    assert unknown != wrong  # the dummy hash, not a real user's


def _raw(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic",
        "Basic !!!not-base64!!!",
        f"Basic {_raw('no-colon-at-all')}",
        f"Basic {_raw(':password-without-user')}",
        f"Basic {_raw('alice@example.com:')}",
        "Bearer some.jwt.token",
        "Digest username=alice",
        "Basic \u00e9\u00e9\u00e9",
    ],
    ids=[
        "none",
        "empty",
        "basic-alone",
        "not-base64",
        "no-colon",
        "no-user",
        "no-password",
        "bearer",
        "digest",
        "not-ascii",
    ],
)
def test_missing_or_malformed_credentials_are_401(client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post("/login", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "missing_credentials"
    assert "curl -u" in response.get_json()["message"]


@pytest.mark.parametrize(
    "email",
    [
        "' OR '1'='1",
        "alice@example.com' -- ",
        "alice@example.com'; DROP TABLE user; --",
        '" OR ""="',
        "%",
        "alice@example.com\x00",
    ],
)
@pytest.mark.stack
def test_sql_injection_in_the_email_logs_nobody_in(client, user, rows, email):
    _, password = user
    response = client.post("/login", headers=basic(email, password))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_credentials"
    assert [r[0] for r in rows()] == ["alice@example.com"]


def test_get_on_login_is_a_json_405(client):
    response = client.get("/login")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_database_down_is_503_json_not_500(environ):
    # A port nothing listens on: a real refused connection, not a mock.
    app = create_app({**environ, "MYSQL_PORT": "1", "MYSQL_CONNECT_TIMEOUT_SECONDS": "1"})
    response = app.test_client().post("/login", headers=basic("alice@example.com", "pw"))
    assert response.status_code == 503
    assert response.get_json()["error"] == "database_unavailable"


@pytest.mark.stack
def test_readyz_says_ready_when_mysql_answers(client):
    assert client.get("/readyz").get_json() == {"status": "ready"}


def test_readyz_says_not_ready_when_mysql_does_not_answer(client, environ):
    assert client.get("/healthz").status_code == 200
    down = create_app({**environ, "MYSQL_PORT": "1", "MYSQL_CONNECT_TIMEOUT_SECONDS": "1"})
    response = down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["error"] == "database_unavailable"


# --- argon2 parameters and the bound on verifies at once (issue 12, part 4) ---------------

#: argon2-cffi's default parameters, which every hash had before (64 MiB, 3 passes, 4 lanes).
OLD_HASHER = argon2.PasswordHasher()


@pytest.mark.stack
def test_an_old_hash_still_logs_in_and_is_replaced_by_todays(client, sql, rows):
    email, password = "old@example.com", "an old password"
    sql(
        "INSERT INTO user (email, password_hash) VALUES (%s, %s)",
        email,
        OLD_HASHER.hash(password),
    )
    first = client.post("/login", headers=basic(email, password))
    assert first.status_code == 200
    ((_, upgraded),) = rows()
    parameters = argon2.extract_parameters(upgraded)
    assert (parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (
        security.MEMORY_COST_KIB,
        security.TIME_COST,
        security.PARALLELISM,
    )
    assert client.post("/login", headers=basic(email, password)).status_code == 200
    assert rows()[0][1] == upgraded  # today's hash is kept as it is
    # The same password, so the token issued before the upgrade stands.
    token = first.get_data(as_text=True)
    assert client.post("/validate", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.stack
def test_a_wrong_password_leaves_an_old_hash_alone(client, sql, rows):
    old = OLD_HASHER.hash("an old password")
    sql("INSERT INTO user (email, password_hash) VALUES (%s, %s)", "old@example.com", old)
    assert client.post("/login", headers=basic("old@example.com", "wrong")).status_code == 401
    assert rows()[0][1] == old


class _SlowHasher:
    """argon2's hasher, slowed down, counting how many verify at the same moment."""

    def __init__(self, hasher):
        self._hasher = hasher
        self._lock = threading.Lock()
        self.running = self.most = 0

    def verify(self, password_hash, password):
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.2)
            return self._hasher.verify(password_hash, password)
        finally:
            with self._lock:
                self.running -= 1

    def __getattr__(self, name):
        return getattr(self._hasher, name)


@pytest.mark.stack
def test_no_more_verifies_run_at_once_than_the_slots(make_client, user, monkeypatch):
    email, password = user
    client = make_client(LOGIN_VERIFY_SLOTS="2", LOGIN_QUEUE_TIMEOUT_SECONDS="10")
    hasher = _SlowHasher(security._hasher)
    monkeypatch.setattr(security, "_hasher", hasher)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(
                lambda _: client.post("/login", headers=basic(email, password)).status_code,
                range(8),
            )  # fmt: skip
        )
    assert statuses == [200] * 8  # each waited its turn, within the wait
    assert hasher.most == 2


@pytest.mark.stack
def test_a_login_that_finds_no_free_slot_is_a_quick_503_json(make_client, user):
    email, password = user
    client = make_client(LOGIN_VERIFY_SLOTS="1", LOGIN_QUEUE_TIMEOUT_SECONDS="0.2")
    slots = client.application.extensions["auth_slots"]
    with slots.held(security.MEMORY_COST_KIB, 1):  # a verify that does not end
        response = client.post("/login", headers=basic(email, password))
    assert response.status_code == 503
    assert response.get_json()["error"] == "busy"
    assert response.headers["Retry-After"] == "1"
    assert client.post("/login", headers=basic(email, password)).status_code == 200


def test_an_old_64_mib_hash_reserves_room_for_all_of_its_memory():
    assert security.memory_kib(None) == security.MEMORY_COST_KIB
    assert security.memory_kib(security.hash_password("pw")) == security.MEMORY_COST_KIB
    assert security.memory_kib(OLD_HASHER.hash("pw")) == 64 * 1024
    slots = MemorySlots(2, security.MEMORY_COST_KIB)
    assert slots.needed(security.MEMORY_COST_KIB) == 1
    assert slots.needed(64 * 1024) == 2  # all of them: it runs alone
    assert MemorySlots(8, security.MEMORY_COST_KIB).needed(64 * 1024) == 4


def test_slots_are_given_back_and_a_full_house_refuses_in_time():
    slots = MemorySlots(2, 1024)
    with slots.held(1024, 1), slots.held(1024, 1):
        assert slots.in_use == 2
        with pytest.raises(Busy), slots.held(1024, 0.05):
            pass
    assert slots.in_use == 0
    with slots.held(10 * 1024, 1):  # larger than all slots: takes them all
        assert slots.in_use == 2
    assert slots.in_use == 0


def test_one_oversized_verify_at_a_time_across_the_workers(tmp_path):
    """Two workers of one server (two MemorySlots on one lock file): an old 64 MiB hash's
    verify in one makes another in the other wait; today's hashes are not held up."""
    lock = str(tmp_path / "argon2.lock")
    worker_1, worker_2 = (MemorySlots(2, security.MEMORY_COST_KIB, lock) for _ in range(2))
    old = 64 * 1024
    with worker_1.held(old, 1):
        with pytest.raises(Busy), worker_2.held(old, 0.1):
            pass
        assert worker_2.in_use == 0  # the slots it took while waiting are given back
        with worker_2.held(security.MEMORY_COST_KIB, 0.1):
            assert worker_2.in_use == 1
    with worker_2.held(old, 0.1):
        assert worker_2.in_use == 2
