"""The notification service's metrics after real mails: a 4xx then accepted, and a 5xx.

The shared Consumer runs in this process, on the test's own queue and database, against a
real SMTP server; the values are read from prometheus_client's registry.
"""

import threading

import pytest
from conftest import Mailbox, SmtpServer, finished_job, publish
from prometheus_client import REGISTRY

from mp3common.messages import Mp3Message
from mp3testing import wait_until
from notification_service import create_consumer
from notification_service.settings import load


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    return {
        "sent": value("notification_mails_sent_total"),
        "retry": value("notification_mails_failed_total", reason="retry"),
        "permanent": value("notification_mails_failed_total", reason="permanent"),
        "attempts timed": value("notification_send_seconds_count"),
        "seconds": value("notification_send_seconds_sum"),
    }


@pytest.mark.stack
def test_sent_and_failed_mails_are_counted_by_reason_and_timed(environ, jobs, certificate):
    box = Mailbox(answers=["451 4.7.1 Greylisted, try later"])
    greylisted = finished_job(jobs, owner="ann@example.com")
    unknown = finished_job(jobs, owner="nobody@example.com")
    before = snapshot()
    with SmtpServer(box, tls=certificate) as server:
        consumer = create_consumer(environ | server.environ())
        thread = threading.Thread(target=consumer.run, daemon=True)
        thread.start()
        try:
            publish(environ["MP3_QUEUE"], Mp3Message.for_job(greylisted).body())
            assert wait_until(lambda: jobs.get(greylisted.id).notified_at, 20)
            box.answers.append("550 5.1.1 The email account does not exist")
            publish(environ["MP3_QUEUE"], Mp3Message.for_job(unknown).body())
            assert wait_until(lambda: jobs.get(unknown.id).notify_error, 20)
        finally:
            consumer.stop()
            thread.join(30)
    after = snapshot()
    grown = {name: after[name] - before[name] for name in after}
    assert len(box.messages) == 1
    assert (grown["sent"], grown["retry"], grown["permanent"]) == (1, 1, 1)
    assert grown["attempts timed"] == 3  # every SMTP conversation, answered or refused
    assert 0 < grown["seconds"] < 20


def test_the_metrics_port_is_off_unless_set():
    assert load({}).metrics_port is None
    assert load({"METRICS_PORT": "9103"}).metrics_port == 9103
