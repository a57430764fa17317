"""Which failures are worth trying again: the one rule every consumer follows.

A consumer that retries whatever went wrong lets one bad message hold everyone up: a mail
header that can never be built was retried six times, each delivery waiting out the last
one's claim, while every other user's mail queued behind it (issue 12). So the rule is
the other way round: only a failure *known* to pass is retried; anything else is a fact
about the message, dead-lettered at once with its reason recorded.

Known to pass:

* a `TransientError` (raised by our own code for a failure it knows is temporary: the
  notifier's SMTP 4xx and timeouts, the converter's ffmpeg killed by the machine);
* `OSError`: the network, a full or failing disk, a timeout (`TimeoutError`), a refused or
  reset connection;
* MongoDB unreachable: pymongo's `ConnectionFailure` (`AutoReconnect`, `NetworkTimeout`,
  `ServerSelectionTimeoutError`, `NotPrimaryError`, …) and any error MongoDB itself labels
  retryable;
* RabbitMQ unreachable: pika's connection errors, and `mp3common.amqp.PublishError` (the
  broker did not confirm a follow-up message), which is a `TransientError`.

pika and pymongo are looked up only if installed (a module imports only what its extra
installs); each service that consumes has both.
"""

from __future__ import annotations

_KNOWN: list[type[BaseException]] = [OSError]

try:
    import pika.exceptions

    _KNOWN += [pika.exceptions.AMQPConnectionError, pika.exceptions.ConnectionClosed]
except ImportError:  # pragma: no cover - every consumer installs pika
    pass

try:
    from pymongo.errors import ConnectionFailure, PyMongoError

    _KNOWN.append(ConnectionFailure)
except ImportError:  # pragma: no cover - every consumer installs pymongo
    PyMongoError = None  # type: ignore[assignment,misc]

#: Labels MongoDB (and pymongo) put on an error that a retry may get past.
_RETRYABLE_LABELS = ("RetryableWriteError", "TransientTransactionError")


class TransientError(Exception):
    """A failure our own code knows to be temporary: retry the message later."""


def transient(exc: BaseException) -> bool:
    """True when `exc` is a failure known to pass (see the module docstring)."""
    if isinstance(exc, (TransientError, *_KNOWN)):
        return True
    if PyMongoError is not None and isinstance(exc, PyMongoError):
        return any(exc.has_error_label(label) for label in _RETRYABLE_LABELS)
    return False
