"""The body-progress floor of the gateway's gunicorn worker, on a socket pair (no stack).

The worker itself, under gunicorn with the real stack, is tests/test_slow_clients.py's."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from werkzeug.exceptions import RequestTimeout

from gateway_service.gunicorn_worker import BodyTooSlow, GatewayWorker, ProgressSocket

WINDOW = 0.2
MIN_BYTES = 100


class Request:
    """What ProgressSocket asks of gunicorn's request."""

    closing = False

    def force_close(self):
        self.closing = True


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    yield ProgressSocket(server, MIN_BYTES, WINDOW), client
    server.close()
    client.close()


def test_outside_a_request_reads_are_passed_through(pair):
    watched, client = pair
    client.sendall(b"GET / HTTP/1.1\r\n")
    assert watched.recv(1024) == b"GET / HTTP/1.1\r\n"
    assert watched.fileno() == watched._sock.fileno()  # everything else is the socket's


def test_a_body_that_stops_is_cut_off_and_its_connection_closed(pair):
    watched, client = pair
    request = Request()
    watched.watch(request)
    client.sendall(b"x" * 50)
    assert watched.recv(1024) == b"x" * 50
    with pytest.raises(BodyTooSlow) as raised:
        watched.recv(1024)
    assert isinstance(raised.value, RequestTimeout)  # the app answers 408 request_timeout
    assert raised.value.code == 408
    assert request.closing
    client.sendall(b"late")
    assert watched.recv(1024) == b""  # the rest of that body is not read


def test_a_body_above_the_floor_in_every_window_goes_on_past_many_windows(pair):
    watched, client = pair
    watched.watch(Request())
    windows = 5

    def send_steadily():
        for _ in range(windows * 4):
            client.sendall(b"y" * (MIN_BYTES // 2))
            time.sleep(WINDOW / 4)

    sender = threading.Thread(target=send_steadily)
    sender.start()
    received = 0
    while received < windows * 4 * (MIN_BYTES // 2):
        received += len(watched.recv(1024))
    sender.join()
    watched.unwatch()
    assert watched.gettimeout() is None  # answering is not bounded by the floor


def test_a_window_the_app_spent_elsewhere_is_not_held_against_the_client(pair):
    """The client sent enough; the app read nothing for a whole window (MongoDB was slow)."""
    watched, client = pair
    watched.watch(Request())
    client.sendall(b"z" * MIN_BYTES)
    time.sleep(WINDOW * 1.5)
    assert watched.recv(MIN_BYTES) == b"z" * MIN_BYTES


def test_the_floor_comes_from_the_environment_through_gunicorn_conf():
    worker = GatewayWorker.with_floor(min_bytes=10, window_seconds=1.5)
    assert issubclass(worker, GatewayWorker)
    assert (worker.body_min_bytes, worker.body_window_seconds) == (10, 1.5)
