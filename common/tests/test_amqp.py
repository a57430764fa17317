import json
import logging
import threading
import time
import uuid

import pika
import pytest

from mp3common import amqp
from mp3common.amqp import (
    DELIVERY_LIMIT,
    Consumer,
    Outgoing,
    PermanentError,
    Publisher,
    PublishError,
    declare_queue,
)
from mp3common.logs import request_id
from mp3testing import (
    RABBITMQ_URL,
    RunningConsumer,
    close_connections,
    get_message,
    nothing_returns,
    queue_depth,
    wait_until,
)

pytestmark = pytest.mark.stack  # the real RabbitMQ


def test_both_sides_declare_the_same_queue_without_conflict(queue_name):
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    declare_queue(channel, queue_name)
    declare_queue(channel, queue_name)  # a second declarer with the same arguments is fine
    ok = channel.queue_declare(queue_name, passive=True)
    assert ok.method.message_count == 0
    channel.queue_declare(f"{queue_name}.dlq", passive=True)
    connection.close()


def test_published_messages_are_persistent_json_with_the_request_id(queue_name):
    publisher = Publisher(RABBITMQ_URL, [queue_name])
    token = request_id.set("rid-123")
    try:
        publisher.publish(queue_name, {"video_fid": "abc"}, {"x-extra": "1"})
    finally:
        request_id.reset(token)
        publisher.close()
    body, properties = get_message(queue_name)
    assert json.loads(body) == {"video_fid": "abc"}
    assert properties.delivery_mode == 2
    assert properties.content_type == "application/json"
    assert properties.headers["x-request-id"] == "rid-123"
    assert properties.headers["x-extra"] == "1"


def test_publisher_survives_the_broker_closing_its_connection(queue_name):
    name = f"publisher-{uuid.uuid4().hex[:6]}"
    publisher = Publisher(RABBITMQ_URL, [queue_name], name=name)
    publisher.publish(queue_name, {"n": 1})
    assert wait_until(lambda: close_connections(name) == 1)
    time.sleep(0.5)  # the broker closes it asynchronously; the management API lags behind
    publisher.publish(queue_name, {"n": 2})  # must reconnect, not fail
    publisher.close()
    assert json.loads(get_message(queue_name)[0]) == {"n": 1}
    assert json.loads(get_message(queue_name)[0]) == {"n": 2}


def test_publisher_without_a_broker_fails_fast_with_publish_error(queue_name):
    publisher = Publisher("amqp://guest:guest@127.0.0.1:1/%2F", [queue_name], timeout=1)
    started = time.monotonic()
    with pytest.raises(PublishError, match="unavailable"):
        publisher.publish(queue_name, {"n": 1})
    assert time.monotonic() - started < 10


def _full_queue(queue_name):
    """A queue that holds one message, holds it, and nacks every further publish."""
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    arguments = {"x-max-length": 1, "x-overflow": "reject-publish"}  # classic: exact
    channel.queue_declare(queue_name, durable=True, arguments=arguments)
    channel.basic_publish("", queue_name, b'{"n": 0}')
    connection.close()
    assert wait_until(lambda: queue_depth(queue_name) == 1)


def test_a_message_the_broker_keeps_nacking_is_a_publish_error(queue_name):
    _full_queue(queue_name)
    publisher = Publisher(RABBITMQ_URL, [])
    with pytest.raises(PublishError, match="refused"):
        publisher.publish(queue_name, {"n": 1})
    publisher.close()
    assert queue_depth(queue_name) == 1


class _Signal(logging.Handler):
    """Sets an event when a record at WARNING or above is logged."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.event = threading.Event()

    def emit(self, record):
        self.event.set()


def test_a_nack_that_passes_is_published_again_and_confirmed(queue_name):
    _full_queue(queue_name)
    publisher = Publisher(RABBITMQ_URL, [])
    refused = _Signal()
    amqp.log.addHandler(refused)
    drained = []
    drainer = threading.Thread(
        target=lambda: refused.event.wait(10) and drained.append(get_message(queue_name))
    )
    drainer.start()
    try:
        publisher.publish(queue_name, {"n": 1})  # refused at first, then taken
    finally:
        drainer.join()
        amqp.log.removeHandler(refused)
        publisher.close()
    assert refused.event.is_set() and drained, "the first publish was not refused"
    assert json.loads(get_message(queue_name)[0]) == {"n": 1}


def _consumer(queue_name, handler, **kwargs):
    return Consumer(RABBITMQ_URL, queue_name, handler, **kwargs)


def test_success_publishes_follow_ups_then_acks(queue_name):
    out = f"{queue_name}.out"
    seen = []

    def handler(delivery, stopping):
        seen.append(delivery.body)
        return [Outgoing(out, {"done": delivery.body["n"]})]

    publisher = Publisher(RABBITMQ_URL, [queue_name])
    publisher.publish(queue_name, {"n": 7})
    with RunningConsumer(_consumer(queue_name, handler, publishes_to=[out])):
        message = get_message(out)
    assert message is not None and json.loads(message[0]) == {"done": 7}
    assert seen == [{"n": 7}]
    assert get_message(queue_name, timeout=1) is None  # acked, not waiting again
    assert get_message(f"{queue_name}.dlq", timeout=0.5) is None


def test_permanent_error_dead_letters_at_once(queue_name):
    calls = []

    def handler(delivery, stopping):
        calls.append(1)
        raise PermanentError("the video has no audio track")

    Publisher(RABBITMQ_URL, [queue_name]).publish(queue_name, {"n": 1})
    with RunningConsumer(_consumer(queue_name, handler)):
        dead = get_message(f"{queue_name}.dlq")
    assert dead is not None and json.loads(dead[0]) == {"n": 1}
    assert len(calls) == 1


def test_permanent_error_publishes_its_outgoing_messages_then_dead_letters(queue_name):
    out = f"{queue_name}.out"

    def handler(delivery, stopping):
        raise PermanentError(
            "the video has no audio track",
            outgoing=[Outgoing(out, {"state": "failed", "n": delivery.body["n"]})],
        )

    Publisher(RABBITMQ_URL, [queue_name]).publish(queue_name, {"n": 3})
    with RunningConsumer(_consumer(queue_name, handler, publishes_to=[out])):
        told = get_message(out)
        dead = get_message(f"{queue_name}.dlq")
    assert told is not None and json.loads(told[0]) == {"state": "failed", "n": 3}
    assert dead is not None and json.loads(dead[0]) == {"n": 3}
    assert get_message(queue_name, timeout=0.5) is None


def test_transient_errors_retry_a_bounded_number_of_times_then_dead_letter(queue_name):
    calls = []

    def handler(delivery, stopping):
        calls.append(delivery.delivery_count)
        raise ConnectionError("MongoDB is down")

    Publisher(RABBITMQ_URL, [queue_name]).publish(queue_name, {"n": 1})
    with RunningConsumer(_consumer(queue_name, handler)):
        dead = get_message(f"{queue_name}.dlq", timeout=20)
    assert dead is not None
    # Retried, but not forever: RabbitMQ 3.10 delivers it limit + 1 times, counted 0..limit.
    assert calls == list(range(DELIVERY_LIMIT + 1))


def test_an_error_not_known_to_pass_is_dead_lettered_at_once_and_the_next_goes(queue_name):
    """A bug or data nobody foresaw (here the header error a U+2028 once caused) is not
    retried: with prefetch 1 each retry would hold up every message behind it."""
    calls = []

    def handler(delivery, stopping):
        calls.append((delivery.body["n"], delivery.delivery_count))
        if delivery.body["n"] == 1:
            raise ValueError("Header values may not contain linefeed or carriage return")

    publisher = Publisher(RABBITMQ_URL, [queue_name])
    publisher.publish(queue_name, {"n": 1})
    publisher.publish(queue_name, {"n": 2})
    with RunningConsumer(_consumer(queue_name, handler)):
        dead = get_message(f"{queue_name}.dlq")
        assert wait_until(lambda: len(calls) == 2)
    assert dead is not None and json.loads(dead[0]) == {"n": 1}
    assert calls == [(1, 0), (2, 0)]  # once each: the poison was never retried
    assert nothing_returns(queue_name)


def test_a_message_that_is_not_json_goes_to_the_dlq(queue_name):
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    channel = connection.channel()
    declare_queue(channel, queue_name)
    channel.basic_publish("", queue_name, b"\xff not json")
    connection.close()
    with RunningConsumer(_consumer(queue_name, lambda d, s: None)):
        assert get_message(f"{queue_name}.dlq") is not None


def test_consumer_reconnects_after_the_broker_closes_its_connection(queue_name):
    name = f"consumer-{uuid.uuid4().hex[:6]}"
    seen = []
    publisher = Publisher(RABBITMQ_URL, [queue_name])
    with RunningConsumer(_consumer(queue_name, lambda d, s: seen.append(d.body["n"]), name=name)):
        # Its only connection is gone: the message below arrives only if it reconnected.
        assert wait_until(lambda: close_connections(name) == 1)
        publisher.publish(queue_name, {"n": 1})
        assert wait_until(lambda: seen == [1], timeout=20), seen


@pytest.mark.slow  # 7 s: the handler must outlast the heartbeat timeout, nothing shorter does
def test_long_work_keeps_the_connection_alive(queue_name):
    """A handler running 3x the heartbeat timeout must not cost the connection."""
    name = f"consumer-{uuid.uuid4().hex[:6]}"
    done = []

    def slow(delivery, stopping):
        time.sleep(7)
        done.append(1)

    Publisher(RABBITMQ_URL, [queue_name]).publish(queue_name, {"n": 1})
    with RunningConsumer(_consumer(queue_name, slow, heartbeat=2, name=name)) as consumer:
        assert wait_until(lambda: done, timeout=20)
        assert consumer.ready.is_set()  # it never had to reconnect
    assert done == [1]  # done once: the ack reached the broker, no redelivery
    assert nothing_returns(queue_name)


def test_short_jobs_back_to_back_are_each_handled_and_acked_once(queue_name):
    """How fast each ack follows its handler (not at the next 1 s poll) is measured by
    `make bench` (tests/bench/bench_stores.py): asserted here, a loaded machine failed it."""
    out = f"{queue_name}.out"
    publisher = Publisher(RABBITMQ_URL, [queue_name])
    for n in range(20):
        publisher.publish(queue_name, {"n": n})
    handled = []

    def quick(delivery, stopping):
        handled.append(delivery.body["n"])
        return [Outgoing(out, delivery.body)]

    with RunningConsumer(_consumer(queue_name, quick, publishes_to=[out])):
        assert wait_until(lambda: queue_depth(out) == 20, timeout=20)
    assert handled == list(range(20))  # in order, each once: no redelivery
    assert nothing_returns(queue_name)  # every one acked


def test_stop_hands_an_unfinished_message_back(queue_name):
    started = threading.Event()

    def stuck(delivery, stopping):
        started.set()
        stopping.wait(30)  # a well-behaved handler gives up when asked to stop
        raise InterruptedError("stopped")

    Publisher(RABBITMQ_URL, [queue_name]).publish(queue_name, {"n": 1})
    consumer = _consumer(queue_name, stuck, stop_grace_seconds=0.5)
    with RunningConsumer(consumer):
        assert started.wait(10)
    body = get_message(queue_name)
    assert body is not None and json.loads(body[0]) == {"n": 1}
