"""The edges of the consumer contract: the last delivery, a clean stop, the process around it."""

import json
import logging
import os
import signal
import threading

import pytest

from mp3common.amqp import Consumer, Delivery, HandBack, Publisher, run_consumer
from mp3common.settings import APP_LOAD_ERROR, SettingsError
from mp3testing import RABBITMQ_URL, RunningConsumer, get_message, wait_until


@pytest.mark.parametrize(
    ("count", "limit", "last"),
    [(0, 5, False), (4, 5, False), (5, 5, True), (0, 1, False), (1, 1, True), (0, 0, True)],
)
def test_the_last_delivery_is_the_one_whose_count_reached_the_consumers_limit(count, limit, last):
    assert Delivery({}, {}, count > 0, count, limit).last_delivery is last


@pytest.mark.stack
def test_the_broker_agrees_on_which_delivery_is_the_last(queue_name):
    """RabbitMQ 3.10 delivers a message that keeps failing limit + 1 times, with
    x-delivery-count 0..limit; the delivery that says it is the last really is."""
    seen = []

    def failing(delivery, stopping):
        seen.append((delivery.delivery_count, delivery.delivery_limit, delivery.last_delivery))
        raise ConnectionError("MongoDB is down")

    consumer = Consumer(RABBITMQ_URL, queue_name, failing, delivery_limit=2)
    with RunningConsumer(consumer):  # it declares the queue, with its limit
        Publisher(RABBITMQ_URL, []).publish(queue_name, {"n": 1})
        dead = get_message(f"{queue_name}.dlq", timeout=20)
    assert dead is not None and json.loads(dead[0]) == {"n": 1}
    assert seen == [(0, 2, False), (1, 2, False), (2, 2, True)]


@pytest.fixture
def signals_restored():
    """The test may install the consumer's SIGTERM/SIGINT handlers; pytest's come back."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.mark.stack
def test_a_sigterm_hand_back_is_a_warning_not_an_error(queue_name, caplog, signals_restored):
    started = threading.Event()

    def stopped_midway(delivery, stopping):
        started.set()
        stopping.wait(30)
        raise HandBack("stopping before the work was done")

    Publisher(RABBITMQ_URL, [queue_name]).publish(queue_name, {"n": 1})
    caplog.set_level(logging.INFO)
    consumer = Consumer(RABBITMQ_URL, queue_name, stopped_midway)
    consumer.install_signal_handlers()
    with RunningConsumer(consumer) as running:
        assert started.wait(10)
        os.kill(os.getpid(), signal.SIGTERM)
        assert wait_until(lambda: running.stopping.is_set())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    [handed_back] = [r for r in caplog.records if "handing the message back" in r.getMessage()]
    assert handed_back.levelno == logging.WARNING and handed_back.exc_info is None
    assert "stopping before the work was done" in handed_back.getMessage()
    body, properties = get_message(queue_name)
    assert json.loads(body) == {"n": 1}
    # Not an error, but the broker counts the return: one of the deliveries is spent.
    assert properties.headers["x-delivery-count"] == 1


def test_bad_settings_end_the_process_with_one_line_and_no_traceback(capsys):
    reasons = "svc cannot start: X is not set; Y must be a number, not 'z'"

    def build(environ):
        raise SettingsError(reasons)

    with pytest.raises(SystemExit) as exited:
        run_consumer("svc", build, {})
    assert exited.value.code == APP_LOAD_ERROR != 0
    assert capsys.readouterr().err == f"{reasons}\n"


def test_a_built_consumer_gets_its_signal_handlers_then_runs():
    calls = []

    class Built:
        queue = "q"

        def install_signal_handlers(self):
            calls.append("signals")

        def run(self):
            calls.append("run")

    run_consumer("svc", lambda environ: calls.append(environ) or Built(), {"A": "1"})
    assert calls == [{"A": "1"}, "signals", "run"]


@pytest.mark.stack
def test_a_stopping_worker_takes_no_next_message_to_give_it_back(queue_name):
    """With prefetch 1 the broker sends the next message the moment one is acked; a worker
    that is stopping cancels its consumer first, so that message never leaves the queue
    and keeps all its deliveries."""
    publisher = Publisher(RABBITMQ_URL, [queue_name])
    publisher.publish(queue_name, {"n": 1})
    publisher.publish(queue_name, {"n": 2})
    seen = []

    def last_one(delivery, stopping):
        consumer.stop()  # SIGTERM arrives while the first message is in hand
        seen.append(delivery.body["n"])

    consumer = Consumer(RABBITMQ_URL, queue_name, last_one)
    with RunningConsumer(consumer):
        assert wait_until(lambda: seen)
    body, properties = get_message(queue_name)
    assert seen == [1] and json.loads(body) == {"n": 2}
    assert (properties.headers or {}).get("x-delivery-count", 0) == 0
