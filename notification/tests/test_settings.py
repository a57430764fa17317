import pytest

from mp3common.settings import SettingsError
from notification_service.settings import load

PRODUCTION = {
    "APP_ENV": "production",
    "RABBITMQ_URL": "amqp://notify:s3cret@rabbitmq:5672/%2F",
    "MONGODB_URI": "mongodb://mongo:27017",
    "GMAIL_ADDRESS": "mp3converter@gmail.com",
    "GMAIL_PASSWORD": "abcdefghijklmnop",
}


def test_gmail_with_starttls_is_the_default():
    settings = load(PRODUCTION)
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == (
        "smtp.gmail.com",
        587,
        "starttls",
    )
    assert settings.smtp_username == settings.sender == "mp3converter@gmail.com"
    assert settings.mp3_queue == "mp3"
    assert settings.public_url == "http://mp3converter.com"


def test_development_runs_with_no_settings_at_all():
    settings = load({"APP_ENV": "development"})
    assert settings.sender == "mp3converter@localhost"
    assert settings.rabbitmq_url.startswith("amqp://")


@pytest.mark.parametrize(
    ("security", "port"), [("starttls", 587), ("ssl", 465), ("none", 25), ("SSL", 465)]
)
def test_the_default_port_follows_the_security(security, port):
    change = {"SMTP_SECURITY": security, "SMTP_HOST": "mail.example.com", "GMAIL_PASSWORD": ""}
    settings = load(PRODUCTION | change)
    assert settings.smtp_port == port


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"GMAIL_ADDRESS": ""}, "GMAIL_ADDRESS is not set"),
        ({"GMAIL_ADDRESS": "mp3converter"}, "GMAIL_ADDRESS must be an email address"),
        ({"GMAIL_PASSWORD": ""}, "GMAIL_PASSWORD is not set (Gmail needs an app password)"),
        ({"RABBITMQ_URL": ""}, "RABBITMQ_URL is not set"),
        ({"MONGODB_URI": ""}, "MONGODB_URI is not set"),
        ({"SMTP_SECURITY": "tls"}, "SMTP_SECURITY: input should be 'starttls', 'ssl' or 'none'"),
        ({"SMTP_PORT": "smtp"}, "SMTP_PORT: input should be a valid integer"),
        ({"SMTP_PORT": "70000"}, "SMTP_PORT: input should be less than or equal to 65535"),
        (
            {"SMTP_TIMEOUT_SECONDS": "0"},
            "SMTP_TIMEOUT_SECONDS: input should be greater than",
        ),
        (
            {"SMTP_SEND_ATTEMPTS": "0"},
            "SMTP_SEND_ATTEMPTS: input should be greater than",
        ),
        ({"PUBLIC_URL": "mp3converter.com"}, "PUBLIC_URL must start with http:// or https://"),
        (
            {"SMTP_SECURITY": "none", "SMTP_HOST": "mail.example.com"},
            "SMTP_SECURITY=none would send GMAIL_PASSWORD unencrypted",
        ),
    ],
)
def test_bad_production_settings_stop_the_service_with_one_line(change, complaint):
    with pytest.raises(SettingsError) as raised:
        load(PRODUCTION | change)
    message = str(raised.value)
    assert message.startswith("notification cannot start: ")
    assert complaint in message
    assert "\n" not in message


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as raised:
        load(PRODUCTION | {"GMAIL_ADDRESS": "", "SMTP_PORT": "x", "SMTP_SECURITY": "tls"})
    assert str(raised.value).count(";") == 2


def test_the_old_name_of_the_smtp_timeout_still_works():
    assert load(PRODUCTION | {"SMTP_TIMEOUT": "7"}).smtp_timeout_seconds == 7.0


def test_a_local_relay_without_tls_or_password_is_fine():
    settings = load(
        PRODUCTION
        | {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "1025", "SMTP_SECURITY": "none"}
        | {"GMAIL_PASSWORD": ""}
    )
    assert (settings.smtp_port, settings.smtp_password) == (1025, "")
