"""Fixtures on the real RabbitMQ that `make run` provides (RABBITMQ_URL from var/dev.env)."""

from __future__ import annotations

import uuid

import pytest

from mp3testing import delete_queues


@pytest.fixture
def queue_name():
    """A fresh queue name per test; the queue, its follow-up queue and DLQs go afterwards."""
    name = f"test.{uuid.uuid4().hex[:10]}"
    yield name
    delete_queues(name, f"{name}.out")
