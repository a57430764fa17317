import pytest

from mp3common.settings import Env, SettingsError


def test_a_secret_dev_default_is_refused_in_production_but_other_defaults_are_not():
    env = Env({"APP_ENV": "production", "SECRET": "dev", "HOST": "localhost"})
    env.text("SECRET", dev_default="dev", secret=True)
    env.text("HOST", dev_default="localhost")
    with pytest.raises(SettingsError, match="SECRET is the development default") as caught:
        env.finish("svc")
    assert "HOST" not in str(caught.value)


def test_a_placeholder_from_the_kubernetes_manifests_is_refused_in_production():
    """secret.yaml's CHANGE-ME, applied without `make k8s-secrets`, also inside a URL."""
    environ = {"PASSWORD": "CHANGE-ME", "URL": "amqp://u:CHANGE-ME@rabbitmq:5672/%2F"}
    env = Env({"APP_ENV": "production", **environ})
    env.text("PASSWORD", dev_default="dev", secret=True)
    env.text("URL", dev_default="amqp://guest:guest@127.0.0.1:5672/%2F")
    with pytest.raises(SettingsError) as caught:
        env.finish("svc")
    assert "PASSWORD is a placeholder" in str(caught.value)
    assert "URL is a placeholder" in str(caught.value)
    development = Env(environ)
    assert development.text("PASSWORD", secret=True) == "CHANGE-ME"
    development.finish("svc")


@pytest.mark.parametrize(
    ("environ", "read", "expected"),
    [
        ({"N": "x"}, lambda e: e.integer("N", 1), "N must be a whole number"),
        ({"N": "0"}, lambda e: e.integer("N", 1, minimum=1), "N must be between 1"),
        ({"F": "maybe"}, lambda e: e.flag("F", True), "F must be true or false"),
        ({"C": "tls"}, lambda e: e.choice("C", "none", ("none", "ssl")), "C must be one of"),
        ({"X": "-1"}, lambda e: e.number("X", 1.0), "X must be at least 0.0"),
        (
            {"APP_ENV": "production"},
            lambda e: e.text("NEEDED", dev_default="x"),
            "NEEDED is not set",
        ),
    ],
)
def test_bad_values_are_collected_and_reported(environ, read, expected):
    env = Env(environ)
    read(env)
    with pytest.raises(SettingsError, match=expected):
        env.finish("svc")


def test_values_are_parsed():
    env = Env({"N": " 42 ", "F": "yes", "X": "2.5", "C": "SSL"})
    assert env.integer("N", 1) == 42
    assert env.flag("F", False) is True
    assert env.number("X", 1.0) == 2.5
    assert env.choice("C", "none", ("none", "ssl")) == "ssl"
    env.finish("svc")


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
    env = Env({"APP_ENV": "production", "RABBITMQ_URL": url})
    assert env.amqp_url("RABBITMQ_URL") == url
    if complaint is None:
        env.finish("svc")
        return
    with pytest.raises(SettingsError) as caught:
        env.finish("svc")
    assert str(caught.value) == f"svc cannot start: {complaint}"  # that one problem only


def test_development_may_use_the_guest_broker_account():
    env = Env({"RABBITMQ_URL": "amqp://guest:guest@rabbitmq:5672/%2F"})
    assert env.amqp_url("RABBITMQ_URL") == "amqp://guest:guest@rabbitmq:5672/%2F"
    assert Env({}).amqp_url("RABBITMQ_URL") == "amqp://guest:guest@127.0.0.1:5672/%2F"
    env.finish("svc")
