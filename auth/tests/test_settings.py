import logging

import pytest

from auth_service import settings
from mp3common.settings import SettingsError

PRODUCTION = {
    "APP_ENV": "production",
    "MYSQL_HOST": "mysql",
    "MYSQL_PORT": "3306",
    "MYSQL_USER": "auth",
    "MYSQL_PASSWORD": "s3cret-from-a-secret",
    "MYSQL_DB": "auth",
    "JWT_SECRET": "a-real-secret-of-enough-length-0123456789",
}


def test_production_with_every_value_starts():
    loaded = settings.load(PRODUCTION)
    assert loaded.production and loaded.mysql_port == 3306


def test_production_refuses_the_dev_jwt_secret():
    with pytest.raises(SettingsError, match="JWT_SECRET is the development default"):
        settings.load({**PRODUCTION, "JWT_SECRET": settings.DEV_JWT_SECRET})


def test_production_names_every_missing_value_in_one_line():
    with pytest.raises(SettingsError) as caught:
        settings.load({"APP_ENV": "production"})
    message = str(caught.value)
    assert "\n" not in message
    for name in ("MYSQL_HOST", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_DB", "JWT_SECRET"):
        assert f"{name} is not set" in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MYSQL_PORT", "abc", "MYSQL_PORT: input should be a valid integer"),
        ("MYSQL_PORT", "70000", "MYSQL_PORT: input should be less than"),
        ("JWT_SECRET", "short", "at least 32 bytes"),
        (
            "JWT_LIFETIME_SECONDS",
            "10",
            "JWT_LIFETIME_SECONDS: input should be greater",
        ),
        ("APP_ENV", "staging", "APP_ENV: input should be 'development'"),
        ("LOGIN_VERIFY_SLOTS", "0", "LOGIN_VERIFY_SLOTS: input should be greater"),
        ("LOGIN_QUEUE_TIMEOUT_SECONDS", "0", "LOGIN_QUEUE_TIMEOUT_SECONDS: input should be"),
    ],
)
def test_bad_values_are_refused(name, value, expected):
    with pytest.raises(SettingsError, match=expected):
        settings.load({**PRODUCTION, name: value})


def test_development_runs_on_defaults_and_says_so_loudly(caplog):
    with caplog.at_level(logging.WARNING):
        loaded = settings.load({})
    assert loaded.jwt_secret == settings.DEV_JWT_SECRET
    assert "DEVELOPMENT DEFAULTS IN USE" in caplog.text
    assert "JWT_SECRET" in caplog.text


def test_the_entry_point_refuses_production_without_settings_in_one_line():
    """What gunicorn sees when it loads `server:app` in a misconfigured production pod:
    one line, and the exit code after which gunicorn stops instead of booting workers."""
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "-c", "import server"],
        cwd=Path(__file__).resolve().parent.parent,
        env={"APP_ENV": "production", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 4  # gunicorn's APP_LOAD_ERROR
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith("auth cannot start: ")
    assert "JWT_SECRET is not set" in result.stderr
