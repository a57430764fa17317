"""The one rule every consumer follows: which failures are worth trying again."""

import smtplib
import subprocess

import pika.exceptions
import pytest
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from mp3common.amqp import PublishError, QueueMismatch
from mp3common.transient import TransientError, transient


@pytest.mark.parametrize(
    "exc",
    [
        TransientError("ours"),
        OSError(28, "No space left on device"),
        ConnectionRefusedError(),
        TimeoutError(),
        smtplib.SMTPServerDisconnected("gone"),
        ConnectionFailure("down"),
        AutoReconnect("again"),
        NetworkTimeout("slow"),
        ServerSelectionTimeoutError("no primary"),
        OperationFailure("write conflict", details={"errorLabels": ["RetryableWriteError"]}),
        pika.exceptions.AMQPConnectionError("broker gone"),
        pika.exceptions.StreamLostError("lost"),
        pika.exceptions.ConnectionClosedByBroker(320, "shutdown"),
        PublishError("not confirmed"),
        # Until an operator migrates the queue: messages wait for the fix, then flow.
        QueueMismatch("video", {"x-queue-type": "quorum"}, "inequivalent arg"),
    ],
    ids=repr,
)
def test_failures_known_to_pass_are_retried(exc):
    assert transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("Header values may not contain linefeed or carriage return characters"),
        UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range"),
        KeyError("owner"),
        TypeError("expected string"),
        AttributeError("x"),
        ZeroDivisionError(),
        DuplicateKeyError("E11000"),
        OperationFailure("bad query"),
        subprocess.TimeoutExpired(["ffmpeg"], 1),
        pika.exceptions.ChannelClosedByBroker(406, "PRECONDITION_FAILED"),
    ],
    ids=repr,
)
def test_everything_else_is_permanent(exc):
    assert not transient(exc)
