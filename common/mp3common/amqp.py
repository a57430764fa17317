"""RabbitMQ, the same way for every service: topology, confirmed publishing, the consumer.

The reference never declared its queues and had no acknowledgement discipline, so a
video without audio raised inside the callback and came back forever. Here:

* Every queue is declared in code, identically by producers and consumers
  (`declare_queue`): a durable quorum queue with a delivery limit, whose rejected or
  over-delivered messages go to `<queue>.dlq` (through its own exchange `<queue>.dlx`).
* A producer publishes to the queue's own direct exchange, `<queue>.exchange`
  (`declare_publishing`), never to the default exchange: RabbitMQ grants publishing per
  exchange, and the right to the default one is the right to every queue. So each
  service's account may write only to the exchanges of the queues it feeds (the converter
  cannot publish to `video`; rabbit/manifests/rabbitmq-accounts.sh has the table).
* `Publisher` publishes persistent JSON with publisher confirms, and re-opens its
  connection when the broker dropped it (the reference's "500 after idle time").
* `Consumer` is the one consumer contract, shared by the converter and the notification
  service: prefetch 1; the handler runs on a worker thread while the connection keeps
  being serviced (heartbeats); reconnect with capped backoff; the outcomes of a message
  are the four `Handler` states; only a failure known to pass (`mp3common.transient`) is
  retried, any other is dead-lettered at once; SIGTERM gives the current job a grace
  period, then hands it back unacknowledged.
* A queue that already exists with other arguments (a classic queue made by hand, as the
  reference's users did) is named once, with what differs and the command that fixes it
  (`QueueMismatch`, `python -m mp3common.migrate_queue`); a consumer waits for the fix
  instead of crash-looping, a publisher answers `QueueMismatch` (a `PublishError`).
* `run_consumer` is the whole life of a consumer process, the same for both services.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pika
import pika.exceptions

from .logs import request_id
from .settings import SettingsError, refuse_to_start
from .transient import TransientError, transient

log = logging.getLogger(__name__)

#: The queues' `x-delivery-limit`: how many times the broker takes a message back (a
#: requeue, a hand-back, a consumer that died) before it dead-letters it instead. RabbitMQ
#: 3.10 thus delivers a message up to DELIVERY_LIMIT + 1 times (see `Delivery.last_delivery`).
DELIVERY_LIMIT = 5
REQUEST_ID_HEADER = "x-request-id"


class PermanentError(Exception):
    """The message can never succeed (bad input): dead-letter it, do not retry.

    `outgoing` messages (e.g. "this job failed", for the user's mail) are published and
    confirmed before the message is rejected; if they cannot be, it is requeued instead.
    """

    def __init__(self, *args: object, outgoing: Iterable[Outgoing] = ()) -> None:
        super().__init__(*args)
        self.outgoing = list(outgoing)


class HandBack(Exception):
    """The worker is stopping and the handler gives its message back unfinished.

    Not a failure: the Consumer requeues the message with a warning and no traceback, and
    nothing is wrong with the message. The broker does count the return as a delivery
    (`Delivery.last_delivery` says when it will dead-letter it instead).
    """


class PublishError(TransientError):
    """The broker did not confirm the message; nothing can be assumed about it."""


class QueueMismatch(PublishError):
    """A queue exists with other arguments than declared (RabbitMQ's PRECONDITION_FAILED).

    Retrying cannot help: the broker keeps the queue as it is until somebody moves its
    messages and re-creates it, which `python -m mp3common.migrate_queue` does.
    """

    def __init__(self, queue: str, declared: Mapping[str, object], broker_says: str) -> None:
        self.queue = queue
        self.declared = dict(declared)
        self.broker_says = broker_says
        super().__init__(
            f"queue {queue!r} exists with other arguments than this service declares "
            f"(RabbitMQ: {broker_says}); declared: {_arguments(declared)}. Fix: move its "
            f"messages into the declared quorum queue with "
            f"`{migrate_command(_main_queue(queue))}` (no message is lost)"
        )


def migrate_command(queue: str) -> str:
    return f"python -m mp3common.migrate_queue {queue}"


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dlq"


def dead_letter_exchange(queue: str) -> str:
    """Where `queue`'s dead letters go, bound to `<queue>.dlq`. Its own exchange, not the
    default one: RabbitMQ lets whoever declares a queue with a dead-letter exchange write
    to that exchange, and the right to write to the default exchange is the right to
    publish to every queue."""
    return f"{queue}.dlx"


def _main_queue(queue: str) -> str:
    return queue.removesuffix(".dlq")


def queue_arguments(queue: str, *, delivery_limit: int = DELIVERY_LIMIT) -> dict[str, object]:
    """The arguments `queue` is declared with (see `declare_queue`)."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": dead_letter_exchange(queue),
        "x-dead-letter-routing-key": dead_letter_queue(queue),
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


#: The arguments of every dead-letter queue.
DEAD_LETTER_QUEUE_ARGUMENTS: dict[str, object] = {"x-queue-type": "quorum"}

#: Queues whose mismatch this process has already logged (said once, not per reconnect).
_mismatch_reported: set[str] = set()
_mismatch_lock = threading.Lock()


def declare_queue(channel, queue: str, *, delivery_limit: int = DELIVERY_LIMIT) -> None:
    """Declare `queue` and its dead-letter queue; every side calls this with the same values.

    Quorum queues count deliveries themselves (`x-delivery-limit`), so a message that keeps
    failing, or keeps killing its consumer, ends in `<queue>.dlq` instead of looping. The
    at-least-once dead-letter strategy (which needs `reject-publish` overflow) means a
    dead-lettered message is not lost on its way to the DLQ.

    Raises `QueueMismatch` (logged as an error once per process and queue) when either
    queue exists with other arguments; the channel is closed then (the broker closes it).
    """
    dlq = dead_letter_queue(queue)
    _declare(channel, dlq, DEAD_LETTER_QUEUE_ARGUMENTS)
    bind_dead_letter_exchange(channel, queue)
    _declare(channel, queue, queue_arguments(queue, delivery_limit=delivery_limit))


def bind_dead_letter_exchange(channel, queue: str) -> None:
    """Declare `queue`'s dead-letter exchange and bind `<queue>.dlq` to it (which must exist)."""
    exchange = dead_letter_exchange(queue)
    channel.exchange_declare(exchange=exchange, exchange_type="direct", durable=True)
    dlq = dead_letter_queue(queue)
    channel.queue_bind(queue=dlq, exchange=exchange, routing_key=dlq)


def publish_exchange(queue: str) -> str:
    """The direct exchange `queue`'s producers publish to (bound to `queue` by its name)."""
    return f"{queue}.exchange"


def declare_publishing(channel, queue: str) -> None:
    """What a producer of `queue` declares: the queue (`declare_queue`), its exchange, and
    the binding between them. A consumer declares only its queue, so it needs no right on
    the exchange: only producers may publish there."""
    declare_queue(channel, queue)
    bind_publish_exchange(channel, queue)


def bind_publish_exchange(channel, queue: str) -> None:
    """Declare `queue`'s exchange and bind it to the queue, which must exist."""
    exchange = publish_exchange(queue)
    channel.exchange_declare(exchange=exchange, exchange_type="direct", durable=True)
    channel.queue_bind(queue=queue, exchange=exchange, routing_key=queue)


def _declare(channel, queue: str, arguments: Mapping[str, object]) -> None:
    try:
        channel.queue_declare(queue=queue, durable=True, arguments=dict(arguments))
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 406:  # PRECONDITION_FAILED
            raise
        mismatch = QueueMismatch(queue, arguments, exc.reply_text)
        with _mismatch_lock:
            first = queue not in _mismatch_reported
            _mismatch_reported.add(queue)
        if first:
            log.error("%s", mismatch)
        raise mismatch from None
    with _mismatch_lock:
        fixed = queue in _mismatch_reported
        _mismatch_reported.discard(queue)
    if fixed:
        log.info("queue %r is now declared as this service expects", queue)


def _arguments(arguments: Mapping[str, object]) -> str:
    return ", ".join(f"{key}={value}" for key, value in arguments.items())


def connection_parameters(url: str, name: str, *, heartbeat: int = 30, timeout: float = 5.0):
    """Bounded timeouts everywhere, and a name that shows in the management UI."""
    parameters = pika.URLParameters(url)
    parameters.client_properties = {"connection_name": name}
    parameters.heartbeat = heartbeat
    parameters.blocked_connection_timeout = timeout * 6
    parameters.socket_timeout = timeout
    parameters.stack_timeout = timeout * 2
    parameters.connection_attempts = 1
    return parameters


def _properties(headers: dict | None) -> pika.BasicProperties:
    headers = dict(headers or {})
    rid = request_id.get()
    if rid and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = rid
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=uuid.uuid4().hex,
        headers=headers,
    )


#: Seconds to wait before publishing again after each broker nack. A quorum queue nacks while
#: it has no leader (just declared on a loaded broker, or re-electing), which passes in well
#: under a second; a nack that outlasts these is reported (PublishError, or a requeue).
NACK_BACKOFF_SECONDS = (0.1, 0.4, 1.0)


def _publish_confirmed(channel, queue: str, body: dict, headers: dict | None) -> None:
    """Publish once and wait for the confirm, publishing again after a nack (see above).

    Raises pika's UnroutableError when no queue took the message and NackError when the
    broker still refused it after the last wait.
    """
    encoded = json.dumps(body).encode()
    for wait in (*NACK_BACKOFF_SECONDS, None):
        try:
            channel.basic_publish(
                exchange=publish_exchange(queue),
                routing_key=queue,
                body=encoded,
                properties=_properties(headers),
                mandatory=True,
            )
            return
        except pika.exceptions.NackError:
            if wait is None:
                raise
            log.warning("the broker nacked a message for %s; again in %.1f s", queue, wait)
            channel.connection.sleep(wait)


class Publisher:
    """One confirmed-publish connection per process, re-opened whenever it has died.

    Thread-safe: a lock serialises use of the one connection (pika's blocking connection is
    not thread-safe), which is cheap next to the upload that precedes each publish.
    """

    def __init__(
        self, url: str, queues: Iterable[str], *, name: str = "publisher", timeout: float = 5.0
    ) -> None:
        self._url = url
        self._name = name
        self._queues = tuple(queues)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._connection = None
        self._channel = None
        #: The queues whose exchange this connection has declared and bound.
        self._bound: set[str] = set()

    def _open(self):
        if self._channel is not None and self._channel.is_open and self._connection.is_open:
            return self._channel
        self._close_quietly()
        self._connection = pika.BlockingConnection(
            connection_parameters(self._url, self._name, timeout=self._timeout)
        )
        channel = self._connection.channel()
        channel.confirm_delivery()
        try:
            for queue in self._queues:
                declare_publishing(channel, queue)
        except QueueMismatch:
            self._close_quietly()
            raise
        self._channel = channel
        self._bound = set(self._queues)
        return channel

    def _close_quietly(self) -> None:
        if self._connection is not None:
            try:
                if self._connection.is_open:
                    self._connection.close()
            except Exception:  # noqa: BLE001 - it is being thrown away either way
                log.debug("closing a dead AMQP connection failed", exc_info=True)
        self._connection = self._channel = None

    def publish(self, queue: str, body: dict, headers: dict | None = None) -> None:
        """Publish persistently and wait for the broker's confirm; raise PublishError if not."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    channel = self._open()
                    # Lets pika notice a connection the broker closed while we were idle.
                    self._connection.process_data_events(0)
                    channel = self._open()
                    if queue not in self._bound:  # a queue somebody else declared
                        bind_publish_exchange(channel, queue)
                        self._bound.add(queue)
                    _publish_confirmed(channel, queue, body, headers)
                    return
                except pika.exceptions.UnroutableError as exc:
                    raise PublishError(f"no queue took the message: {exc!r}") from exc
                except pika.exceptions.NackError as exc:
                    raise PublishError(f"the broker refused the message: {exc!r}") from exc
                except (pika.exceptions.AMQPError, OSError) as exc:
                    self._close_quietly()
                    if attempt == 2:
                        raise PublishError(f"RabbitMQ is unavailable: {exc!r}") from exc
                    log.warning("AMQP connection lost (%r); reconnecting once", exc)

    def check(self) -> None:
        """Raise PublishError unless the broker answers (for readiness probes)."""
        with self._lock:
            try:
                self._open()
                self._connection.process_data_events(0)
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._close_quietly()
                raise PublishError(f"RabbitMQ is unavailable: {exc!r}") from exc

    def close(self) -> None:
        with self._lock:
            self._close_quietly()


@dataclass
class Delivery:
    """A message handed to a handler: the JSON body and what the broker said about it."""

    body: dict
    headers: dict
    redelivered: bool
    #: The broker's `x-delivery-count`: how many times the message came back (0 at first).
    delivery_count: int
    #: The `x-delivery-limit` the consumer declared its queue with.
    delivery_limit: int

    @property
    def last_delivery(self) -> bool:
        """True when the broker dead-letters the message if it comes back once more.

        RabbitMQ 3.10's quorum queues count every return of a message (requeue, reject,
        a consumer gone) and dead-letter it when a return takes the count past the limit:
        a message is delivered with x-delivery-count 0, 1, ..., limit, so limit + 1 times,
        and the delivery whose count equals the limit is the last one.
        """
        return self.delivery_count >= self.delivery_limit


@dataclass
class Outgoing:
    """A message a handler wants published, confirmed, before its own message is acked."""

    queue: str
    body: dict
    headers: dict = field(default_factory=dict)


class Handler(Protocol):
    """What the Consumer calls for each message, on a worker thread, with the delivery and
    an event that is set when the worker is asked to stop. Its outcome is one of four:

    * **done**: it returns (the messages to publish, or None). They are published and
      confirmed, then the message is acked. If one cannot be confirmed, it is requeued.
    * **retry**: it raises a failure known to pass (`mp3common.transient`: a store or
      the network is down, a `TransientError`). The message is requeued and logged as an
      error with its traceback. The broker bounds this: past the queue's delivery limit
      it dead-letters the message, so on `delivery.last_delivery` a handler that wants
      somebody told must say so itself (with a PermanentError).
    * any other exception (a bug, data nobody foresaw) is not retried: the message is
      dead-lettered at once, logged with its traceback, with nothing published. A
      handler that must record the failure catches it and raises PermanentError.
    * **dead-letter**: it raises `PermanentError` (the message can never succeed). Its
      `outgoing` messages (e.g. "this job failed") are published and confirmed, then the
      message is rejected to `<queue>.dlq`.
    * **hand back**: it raises `HandBack` because `stopping` is set. The message is
      requeued for another worker, logged as a warning without a traceback: a rolling
      deploy is not an error. A handler still running when the stop grace period is over
      is handed back the same way, without waiting for it.
    """

    def __call__(
        self, delivery: Delivery, stopping: threading.Event, /
    ) -> Iterable[Outgoing] | None: ...


class Consumer:
    """Consume `queue` one message at a time under the contract in this module's docstring.

    `dead_letters_of`: `queue` is that queue's dead-letter queue, declared as its main queue
    declares it (a dead-letter queue has no limit and no dead-letter queue of its own, so a
    message it cannot take is dropped: the handler must record what it needs).
    """

    def __init__(
        self,
        url: str,
        queue: str,
        handler: Handler,
        *,
        publishes_to: Iterable[str] = (),
        dead_letters_of: str | None = None,
        delivery_limit: int = DELIVERY_LIMIT,
        heartbeat_file: str | None = None,
        stop_grace_seconds: float = 30.0,
        max_backoff_seconds: float = 30.0,
        heartbeat: int = 30,
        name: str | None = None,
    ) -> None:
        if dead_letters_of is not None and queue != dead_letter_queue(dead_letters_of):
            raise ValueError(f"{queue!r} is not the dead-letter queue of {dead_letters_of!r}")
        self.queue = queue
        self._dead_letters_of = dead_letters_of
        self._name = name or f"consumer of {queue}"
        self._url = url
        self._handler = handler
        self._publishes_to = tuple(publishes_to)
        self.delivery_limit = delivery_limit
        self._heartbeat_file = Path(heartbeat_file) if heartbeat_file else None
        self._stop_grace = stop_grace_seconds
        self._max_backoff = max_backoff_seconds
        self._heartbeat = heartbeat
        self.stopping = threading.Event()
        self._consuming = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{queue}-job")
        self.ready = threading.Event()

    # --- lifecycle ---------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())

    def stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stop requested; finishing or handing back the current message")
        self.stopping.set()

    def run(self) -> None:
        """Consume until stopped; reconnect on connection errors, give up on channel errors."""
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                self._consume()
                backoff = 1.0
            except QueueMismatch:
                # Said once, with its fix (declare_queue); retried quietly so that the
                # consumer goes on by itself once the queue is migrated.
                self.ready.clear()
                self.stopping.wait(self._max_backoff)
            except pika.exceptions.AMQPChannelError:
                log.exception(
                    "channel error on %s: giving up (fix the broker or queue)", self.queue
                )
                raise
            except (pika.exceptions.AMQPConnectionError, OSError) as exc:
                self.ready.clear()
                log.warning("AMQP connection lost (%r); reconnecting in %.0f s", exc, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
        self._executor.shutdown(wait=False, cancel_futures=True)
        log.info("consumer of %s stopped", self.queue)

    # --- the loop ----------------------------------------------------------------------

    def _beat(self) -> None:
        if self._heartbeat_file is not None:
            self._heartbeat_file.touch()

    def _consume(self) -> None:
        connection = pika.BlockingConnection(
            connection_parameters(self._url, self._name, heartbeat=self._heartbeat)
        )
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=1)
            if self._dead_letters_of is not None:
                declare_queue(channel, self._dead_letters_of, delivery_limit=self.delivery_limit)
            else:
                declare_queue(channel, self.queue, delivery_limit=self.delivery_limit)
            publish_channel = connection.channel()
            publish_channel.confirm_delivery()
            for queue in self._publishes_to:
                declare_publishing(publish_channel, queue)
            log.info("consuming %s", self.queue)
            self.ready.set()
            self._beat()
            self._consuming = True
            for method, properties, body in channel.consume(self.queue, inactivity_timeout=1.0):
                self._beat()
                if method is None:
                    if self.stopping.is_set():
                        break
                    continue
                self._process(connection, channel, publish_channel, method, properties, body)
                if self.stopping.is_set():
                    break
            self._stop_deliveries(channel)
        finally:
            if connection.is_open:
                connection.close()

    def _process(self, connection, channel, publish_channel, method, properties, body) -> None:
        headers = dict(properties.headers or {})
        token = request_id.set(str(headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex))
        try:
            try:
                delivery = Delivery(
                    body=_decode(body),
                    headers=headers,
                    redelivered=bool(method.redelivered),
                    delivery_count=int(headers.get("x-delivery-count", 0)),
                    delivery_limit=self.delivery_limit,
                )
            except PermanentError as exc:
                log.error("dead-lettering an unreadable message: %s", exc)
                channel.basic_reject(method.delivery_tag, requeue=False)
                return
            # The handler's thread sees this message's request id in its log lines too.
            context = contextvars.copy_context()
            future = self._executor.submit(context.run, self._handler, delivery, self.stopping)
            finished = self._wait(connection, future)
            if self.stopping.is_set():
                self._stop_deliveries(channel)
            if not finished:
                log.warning("handing the message back unfinished (stop grace period over)")
                channel.basic_nack(method.delivery_tag, requeue=True)
                return
            try:
                outgoing = list(future.result() or ())
            except PermanentError as exc:
                log.error("dead-lettering the message: %s", exc)
                if _publish_all(publish_channel, exc.outgoing):
                    channel.basic_reject(method.delivery_tag, requeue=False)
                else:
                    channel.basic_nack(method.delivery_tag, requeue=True)
                return
            except HandBack as exc:
                log.warning(
                    "handing the message back unfinished (%s)%s",
                    exc,
                    "; it was its last delivery: the broker dead-letters it"
                    if delivery.last_delivery
                    else "",
                )
                channel.basic_nack(method.delivery_tag, requeue=True)
                return
            except Exception as exc:
                if not transient(exc):
                    # Not known to pass: retrying would only hold up every message behind
                    # it (prefetch 1). A handler that wants the failure recorded raises
                    # PermanentError itself; this is the net under it.
                    log.exception(
                        "handler failed with %s, not a failure known to pass; "
                        "dead-lettering the message",
                        type(exc).__name__,
                    )
                    channel.basic_reject(method.delivery_tag, requeue=False)
                    return
                log.exception(
                    "handler failed (delivery %d of at most %d); %s",
                    delivery.delivery_count + 1,
                    self.delivery_limit + 1,
                    "the broker dead-letters it" if delivery.last_delivery else "requeueing",
                )
                channel.basic_nack(method.delivery_tag, requeue=True)
                return
            if _publish_all(publish_channel, outgoing):
                channel.basic_ack(method.delivery_tag)
            else:
                channel.basic_nack(method.delivery_tag, requeue=True)
        finally:
            request_id.reset(token)

    def _stop_deliveries(self, channel) -> None:
        """Cancel the consumer, once. A stopping worker does so before it settles its last
        message: with prefetch 1, the broker sends the next message (or this one again,
        handed back) the moment it is settled, and that one would go back at the cancel,
        costing it one of its deliveries for nothing."""
        if self._consuming:
            self._consuming = False
            channel.cancel()

    def _wait(self, connection, future: Future) -> bool:
        """Service the connection while the handler works; False if a stop outlasts it."""
        # Wake the I/O loop the moment the handler returns, not at its next time limit:
        # a job of 0.3 s must not wait up to 0.5 s more for its ack.
        future.add_done_callback(lambda _: connection.add_callback_threadsafe(_nothing))
        stop_deadline = None
        while not future.done():
            connection.process_data_events(time_limit=0.5)
            self._beat()
            if self.stopping.is_set():
                stop_deadline = stop_deadline or time.monotonic() + self._stop_grace
                if time.monotonic() > stop_deadline:
                    return False
        return True


def run_consumer(
    service: str,
    build: Callable[[Mapping[str, str] | None], Consumer | Sequence[Consumer]],
    environ: Mapping[str, str] | None = None,
) -> None:
    """A consumer process from start to exit, the same for every consumer service.

    `build(environ)` reads the settings (SettingsError if they cannot run the service),
    configures logging and returns the Consumer (or several: the first is the process's
    own, the others run beside it on threads, e.g. the converter's dead-letter reaper);
    the environment is the process's when `environ` is None. Bad settings end the process
    with every reason on one stderr line and a non-zero exit, as the web services do. Then
    SIGTERM/SIGINT stop the first (the current message gets the consumer's grace period),
    then the others, and it exits with 0.
    """
    try:
        built = build(environ)
    except SettingsError as exc:
        refuse_to_start(exc)
    main, *companions = built if isinstance(built, list | tuple) else [built]
    main.install_signal_handlers()
    threads = [
        threading.Thread(target=consumer.run, name=f"consumer-{consumer.queue}", daemon=True)
        for consumer in companions
    ]
    for thread in threads:
        thread.start()
    log.info("%s started (pid %d) on queue %s", service, os.getpid(), main.queue)
    try:
        main.run()
    finally:  # the companions stop with the process's own consumer
        for consumer in companions:
            consumer.stop()
        for thread in threads:
            thread.join(timeout=10)


def _nothing() -> None:
    """A callback whose only effect is to wake a BlockingConnection's I/O loop."""


def _publish_all(channel, outgoing: Iterable[Outgoing]) -> bool:
    """Publish each message, confirmed; False (and logged) if the broker refused one."""
    try:
        for message in outgoing:
            _publish_confirmed(channel, message.queue, message.body, message.headers)
    except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
        log.error("follow-up message not confirmed (%r); requeueing", exc)
        return False
    return True


def _decode(body: bytes) -> dict:
    try:
        decoded = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PermanentError(f"the message is not JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise PermanentError("the message is not a JSON object")
    return decoded
