"""Move a queue made with other arguments (a hand-made classic queue) into the declared one.

    RABBITMQ_URL=amqp://user:pass@host:5672/%2F python -m mp3common.migrate_queue video

RabbitMQ cannot change a queue's type or arguments in place, and every service declares
its queues as `mp3common.amqp.declare_queue` says (quorum, delivery limit, dead-letter
queue); while an older `video` or `mp3` exists with other arguments, the services refuse
to use it (`QueueMismatch`: uploads answer 503, consumers wait). For the queue and its
`<queue>.dlq`, each one that does not match:

1. declare a temporary quorum queue `<name>.migrating`;
2. move every message into it (get, publish with confirm, then ack the original: a
   message is acked only once the broker holds its copy, so none is lost; a crash
   mid-way can at worst leave a message in both, which the services take once, as they
   take any redelivery);
3. delete the old queue only if it is empty (a producer may still be adding to it: then
   move again and retry);
4. declare the queue as the services do, and move the messages back, the same way;
5. delete the temporary queue (once it is empty).

Run again after an interruption, it picks up where it stopped (a queue already as
declared only gets back what its temporary queue still holds). Messages keep their body,
properties and headers, in their order. Exit 0 when both queues are as declared.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping

import pika
import pika.exceptions

from .amqp import (
    DEAD_LETTER_QUEUE_ARGUMENTS,
    bind_dead_letter_exchange,
    connection_parameters,
    dead_letter_queue,
    queue_arguments,
)
from .settings import DEV_RABBITMQ_URL

log = logging.getLogger("mp3common.migrate_queue")

TEMPORARY_SUFFIX = ".migrating"
#: Attempts at deleting the old queue while a producer keeps filling it.
DELETE_ATTEMPTS = 10


def temporary_queue(queue: str) -> str:
    return f"{queue}{TEMPORARY_SUFFIX}"


def migrate(url: str, queue: str) -> dict[str, int]:
    """Bring `queue` and its dead-letter queue to their declared arguments; the number of
    messages moved into each (0 for one that already matched and had nothing pending)."""
    connection = pika.BlockingConnection(connection_parameters(url, "migrate_queue"))
    try:
        moved = {
            dead_letter_queue(queue): _migrate_one(
                connection, url, dead_letter_queue(queue), DEAD_LETTER_QUEUE_ARGUMENTS
            )
        }
        # Before the queue is declared again: its dead letters must have a way to go.
        bind_dead_letter_exchange(connection.channel(), queue)
        moved[queue] = _migrate_one(connection, url, queue, queue_arguments(queue))
        return moved
    finally:
        if connection.is_open:
            connection.close()


def _migrate_one(connection, url: str, name: str, arguments: Mapping[str, object]) -> int:
    temporary = temporary_queue(name)
    channel = connection.channel()
    channel.confirm_delivery()
    if _matches(connection, name, arguments):
        if not _exists(connection, temporary):
            log.info("%s is as declared; nothing to do", name)
            return 0
        log.info("%s is as declared; moving back what %s holds", name, temporary)
    else:
        channel.queue_declare(temporary, durable=True, arguments={"x-queue-type": "quorum"})
        moved = _move(channel, name, temporary)
        for _ in range(DELETE_ATTEMPTS):
            try:
                _delete_if_empty(url, name)
                break
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 406:  # not "not empty"
                    raise
                channel = connection.channel()
                channel.confirm_delivery()
                moved += _move(channel, name, temporary)
        else:
            raise RuntimeError(f"{name} keeps filling up; stop its producers and run again")
        log.info(
            "moved %d message(s) from the old %s into %s and deleted it", moved, name, temporary
        )
        # A fresh channel: RabbitMQ 3.10's channel remembers the deleted queue's type and
        # crashes (541 INTERNAL_ERROR) on a publish to the new queue of the same name.
        channel.close()
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare(name, durable=True, arguments=dict(arguments))
    moved_back = _move(channel, temporary, name)
    # Nothing but this command writes to it; quorum queues refuse `if_empty`, so count.
    left = channel.queue_declare(temporary, passive=True).method.message_count
    if left:
        raise RuntimeError(f"{temporary} still holds {left} message(s); run again")
    channel.queue_delete(temporary)
    log.info("%s declared as the services expect; %d message(s) moved into it", name, moved_back)
    return moved_back


def _delete_if_empty(url: str, name: str) -> None:
    """Delete `name` if it holds no message, else raise the broker's 406 (not empty).

    A classic queue is deleted with `if_empty`, atomically. A quorum queue refuses that
    flag (540 NOT_IMPLEMENTED, which closes the connection: hence one of its own; such a
    queue predates the dead-letter exchanges of issue 15), so it is deleted right after it
    was counted empty: a message published in between would go with it, so stop its
    producers first (`make run` migrates the dev broker's queues before it starts the
    services).
    """
    connection = pika.BlockingConnection(connection_parameters(url, "migrate_queue delete"))
    try:
        connection.channel().queue_delete(name, if_empty=True)
        return
    except pika.exceptions.ConnectionClosedByBroker as exc:
        if exc.reply_code != 540:
            raise
    finally:
        if connection.is_open:
            connection.close()
    connection = pika.BlockingConnection(connection_parameters(url, "migrate_queue delete"))
    try:
        channel = connection.channel()
        left = channel.queue_declare(name, passive=True).method.message_count
        if left:
            raise pika.exceptions.ChannelClosedByBroker(
                406, f"PRECONDITION_FAILED - {name} is not empty"
            )
        channel.queue_delete(name)
    finally:
        if connection.is_open:
            connection.close()


def _matches(connection, name: str, arguments: Mapping[str, object]) -> bool:
    """True when `name` exists with `arguments` or does not exist (it is then created so)."""
    channel = connection.channel()
    try:
        channel.queue_declare(name, durable=True, arguments=dict(arguments))
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 406:
            raise
        log.info("%s exists with other arguments: %s", name, exc.reply_text)
        return False
    channel.close()
    return True


def _exists(connection, name: str) -> bool:
    channel = connection.channel()
    try:
        channel.queue_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 404:
            raise
        return False
    channel.close()
    return True


def _move(channel, source: str, target: str) -> int:
    """Every message of `source` into `target`, each acked only once its copy is confirmed."""
    moved = 0
    while True:
        method, properties, body = channel.basic_get(source, auto_ack=False)
        if method is None:
            return moved
        if properties.headers:  # the quorum queue's count belongs to the old queue
            properties.headers.pop("x-delivery-count", None)
        channel.basic_publish("", target, body, properties, mandatory=True)
        channel.basic_ack(method.delivery_tag)
        moved += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mp3common.migrate_queue",
        description="Move an existing queue (e.g. a hand-made classic one) and its .dlq into "
        "the quorum queues the services declare, losing no message.",
    )
    parser.add_argument("queue", help="the queue the services use, e.g. video or mp3")
    parser.add_argument(
        "--url",
        default=os.environ.get("RABBITMQ_URL", DEV_RABBITMQ_URL),
        help="the broker (default: $RABBITMQ_URL, else the development broker)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("pika").setLevel(logging.WARNING)
    moved = migrate(args.url, args.queue)
    for name, count in moved.items():
        sys.stdout.write(f"{name}: as declared, {count} message(s) moved in\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
