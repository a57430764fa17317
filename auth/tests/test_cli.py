import pytest
from conftest import basic

pytestmark = pytest.mark.stack  # every test reads the user table


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def test_create_user_then_log_in(runner, client, rows):
    result = runner.invoke(
        args=["create-user", "Bob@Example.com"], input="a long password\na long password\n"
    )
    assert result.exit_code == 0, result.output
    assert "created user bob@example.com" in result.output
    ((email, password_hash),) = rows()
    assert email == "bob@example.com"
    assert password_hash.startswith("$argon2id$")  # never the password itself
    assert "a long password" not in password_hash
    assert (
        client.post("/login", headers=basic("bob@example.com", "a long password")).status_code
        == 200
    )


def test_duplicate_user_is_refused_clearly(runner, user, rows):
    email, _ = user
    result = runner.invoke(args=["create-user", email, "--password-stdin"], input="another pw 1\n")
    assert result.exit_code == 1
    assert f"user {email} already exists" in result.output
    assert len(rows()) == 1


def test_exist_ok_makes_seeding_idempotent(runner, user, rows):
    email, _ = user
    result = runner.invoke(
        args=["create-user", email, "--password-stdin", "--exist-ok"], input="another pw 1\n"
    )
    assert result.exit_code == 0
    assert len(rows()) == 1


@pytest.mark.parametrize(
    ("email", "password", "expected"),
    [
        ("not-an-email", "long enough pw", "give the user's email address"),
        ("carol@example.com", "short", "at least 8 characters"),
    ],
)
def test_bad_input_is_refused(runner, rows, email, password, expected):
    result = runner.invoke(args=["create-user", email, "--password-stdin"], input=password + "\n")
    assert result.exit_code != 0
    assert expected in result.output
    assert rows() == ()


# --- ending a user's tokens: a new password, or the user removed (issue 12, part 8) -------


def _token(client, email, password) -> str:
    response = client.post("/login", headers=basic(email, password))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _validates(client, token) -> int:
    return client.post("/validate", headers={"Authorization": f"Bearer {token}"}).status_code


def test_set_password_ends_the_tokens_issued_before(runner, client, user):
    email, password = user
    before = _token(client, email, password)
    result = runner.invoke(args=["set-password", email, "--password-stdin"], input="new pw 123\n")
    assert result.exit_code == 0, result.output
    assert "tokens issued before are no longer accepted" in result.output
    assert _validates(client, before) == 401
    assert client.post("/login", headers=basic(email, password)).status_code == 401
    assert _validates(client, _token(client, email, "new pw 123")) == 200


def test_delete_user_ends_their_tokens_at_once(runner, client, user, rows):
    email, password = user
    token = _token(client, email, password)
    result = runner.invoke(args=["delete-user", email.upper()])
    assert result.exit_code == 0, result.output
    assert rows() == ()
    assert _validates(client, token) == 401


@pytest.mark.parametrize("command", [["set-password", "--password-stdin"], ["delete-user"]])
def test_an_unknown_user_is_said_so(runner, rows, command):
    name, *options = command
    result = runner.invoke(args=[name, "nobody@example.com", *options], input="pw 12345\n")
    assert result.exit_code == 1
    assert "no user nobody@example.com" in result.output
