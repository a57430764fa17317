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
