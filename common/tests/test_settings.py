"""The settings rules every service shares, on a small settings class of their groups."""

import logging
from typing import Annotated

import pytest
from pydantic import Field

from mp3common.settings import (
    DEV_RABBITMQ_URL,
    BrokerSettings,
    ConsumerSettings,
    DevDefault,
    SettingsError,
    StoreSettings,
)


class Example(BrokerSettings, StoreSettings, ConsumerSettings):
    service_name = "svc"

    host: Annotated[str, DevDefault("localhost")]
    secret: Annotated[str, DevDefault("dev", secret=True)]
    count: int = Field(1, ge=1, le=9)
    ratio: float = Field(1.0, ge=0)
    enabled: bool = True


PRODUCTION = {
    "APP_ENV": "production",
    "HOST": "db",
    "SECRET": "s3cret",
    "RABBITMQ_URL": "amqp://svc:s3cret@rabbitmq:5672/%2F",
    "MONGODB_URI": "mongodb://mongo:27017",
}


def test_production_with_every_value_set_starts():
    settings = Example.read(PRODUCTION)
    assert settings.production and settings.host == "db" and settings.metrics_port is None


def test_a_secret_dev_default_is_refused_in_production_but_other_defaults_are_not():
    with pytest.raises(SettingsError) as caught:
        Example.read(PRODUCTION | {"SECRET": "dev", "HOST": "localhost"})
    assert str(caught.value) == (
        "svc cannot start: SECRET is the development default; set a real value"
    )


def test_a_placeholder_from_the_kubernetes_manifests_is_refused_in_production():
    """secret.yaml's CHANGE-ME, applied without `make k8s-secrets`, also inside a URL."""
    environ = {"SECRET": "CHANGE-ME", "RABBITMQ_URL": "amqp://u:CHANGE-ME@rabbitmq:5672/%2F"}
    with pytest.raises(SettingsError) as caught:
        Example.read(PRODUCTION | environ)
    assert "SECRET is a placeholder" in str(caught.value)
    assert "RABBITMQ_URL is a placeholder" in str(caught.value)
    assert Example.read(environ).secret == "CHANGE-ME"  # development takes it


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"COUNT": "x"}, "COUNT: input should be a valid integer"),
        ({"COUNT": "0"}, "COUNT: input should be greater than or equal to 1 (got '0')"),
        ({"ENABLED": "maybe"}, "ENABLED: input should be a valid boolean"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: input should be 'debug', 'info'"),
        ({"RATIO": "-1"}, "RATIO: input should be greater than or equal to 0"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT: input should be less than or equal to 65535"),
        ({"APP_ENV": "production", "HOST": ""}, "HOST is not set"),
        ({"MONGODB_URI": "mongo:27017"}, "MONGODB_URI must be a mongodb://"),
        ({"STOP_GRACE_SECONDS": "0"}, "STOP_GRACE_SECONDS: input should be greater"),
    ],
)
def test_bad_values_are_told_by_their_variable(environ, expected):
    with pytest.raises(SettingsError, match="^svc cannot start: ") as caught:
        Example.read(PRODUCTION | environ)
    assert expected in str(caught.value)


def test_every_problem_is_told_at_once_on_one_line():
    with pytest.raises(SettingsError) as caught:
        Example.read({"COUNT": "x", "ENABLED": "maybe", "LOG_LEVEL": "loud"})
    message = str(caught.value)
    assert "\n" not in message and message.count(";") == 2


def test_a_credential_is_never_repeated_in_a_message():
    with pytest.raises(SettingsError) as caught:
        Example.read({"RABBITMQ_URL": "http://svc:hunter2@rabbitmq"})
    assert "hunter2" not in str(caught.value)


def test_values_are_parsed_in_any_case_and_with_spaces():
    settings = Example.read({"COUNT": " 4 ", "ENABLED": "no", "RATIO": "2.5", "LOG_LEVEL": "INFO"})
    assert (settings.count, settings.enabled, settings.ratio, settings.log_level) == (
        4,
        False,
        2.5,
        "info",
    )
    assert Example.read({"METRICS_PORT": "0"}).metrics_port is None


def test_development_fills_in_its_defaults_and_says_so_loudly(caplog):
    with caplog.at_level(logging.WARNING):
        settings = Example.read({})
    assert settings.host == "localhost" and settings.rabbitmq_url == DEV_RABBITMQ_URL
    assert "DEVELOPMENT DEFAULTS IN USE for svc" in caplog.text
    assert "HOST" in caplog.text and "RABBITMQ_URL" in caplog.text


def test_settings_are_frozen():
    settings = Example.read({})
    with pytest.raises(ValueError, match="frozen"):
        settings.count = 2


GUEST = "RABBITMQ_URL logs in as RabbitMQ's guest account; give the service a user of its own"
PRODUCTION_BROKER_URLS = [
    ("amqp://mp3converter:s3cret@rabbitmq:5672/%2F", None),
    ("amqps://mp3converter:s3cret@rabbitmq/%2F", None),
    (
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        "RABBITMQ_URL is the development default; set a real value",
    ),
    ("amqp://guest:guest@rabbitmq:5672/%2F", GUEST),
    ("amqp://guest:other@rabbitmq:5672/%2F", GUEST),
    ("amqp://rabbitmq:5672/%2F", GUEST),  # no user: pika logs in as guest
    ("http://rabbitmq:15672", "RABBITMQ_URL must be an amqp:// or amqps:// URL"),
    ("", "RABBITMQ_URL is not set"),
]


@pytest.mark.parametrize(
    ("url", "complaint"),
    PRODUCTION_BROKER_URLS,
    ids=[url or "unset" for url, _ in PRODUCTION_BROKER_URLS],
)
def test_production_refuses_the_guest_broker_account_however_it_is_written(url, complaint):
    environ = PRODUCTION | {"RABBITMQ_URL": url}
    if complaint is None:
        assert Example.read(environ).rabbitmq_url == url
        return
    with pytest.raises(SettingsError) as caught:
        Example.read(environ)
    assert str(caught.value) == f"svc cannot start: {complaint}"  # that one problem only


def test_development_may_use_the_guest_broker_account():
    url = "amqp://guest:guest@rabbitmq:5672/%2F"
    assert Example.read({"RABBITMQ_URL": url}).rabbitmq_url == url


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECRET", "dev-only-compose-jwt-secret-not-for-production"),
        ("RABBITMQ_URL", "amqp://mp3converter:dev-rabbitmq-password@rabbitmq:5672/%2F"),
        ("MONGODB_URI", "mongodb://mp3converter:dev-mongodb-password@mongodb:27017/x"),
    ],
)
def test_production_refuses_every_secret_published_in_the_repository(name, value):
    """docker-compose.yml's defaults would let anyone mint tokens or read the stores."""
    with pytest.raises(SettingsError) as caught:
        Example.read(PRODUCTION | {name: value})
    assert str(caught.value) == (
        f"svc cannot start: {name} holds a secret published in this project's repository "
        "(a docker-compose.yml or development default); set one of your own"
    )
    assert Example.read({name: value})  # development takes it


def test_a_published_value_in_a_field_that_is_no_secret_is_fine():
    Example.read(PRODUCTION | {"HOST": "dev-mysql-password"})
