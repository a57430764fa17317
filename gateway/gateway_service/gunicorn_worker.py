"""The gateway's gunicorn worker: gevent, so a slow client costs a greenlet, not a thread.

Under gthread every connection still sending its headers or its body held one of the
worker's threads: 16 such clients (2 workers x 8 threads), with no token needed, and
/healthz and /login waited for them. A gevent worker waits for thousands of sockets at a
few KiB each; what it needs of the code is that nothing blocks outside gevent's patched
sockets, locks and subprocesses (pymongo, pika's BlockingConnection, requests, the GridFS
writer's thread and the ffmpeg probe all go through them; tests/bench/bench_slow_clients.py
and the stack tests run them that way).

Cheap is not free, so a client must also keep moving:

- headers: gunicorn's gevent worker reads a request line and headers, and waits for the
  next request on a kept-alive connection, for at most `keepalive` seconds, then closes
  the connection (as nginx does on client_header_timeout, without an answer);
- bodies: while a request is served, its body must bring at least `body_min_bytes` in
  every `body_window_seconds` (a floor on progress, not a limit on the total: a 2 GiB
  upload over a slow mobile link may take an hour; bytes that wait unread count, so a
  pause of the gateway's own is not held against the client). A body below it ends the
  read with 408 `request_timeout`; an upload's partial file is removed as for any broken
  upload, and the connection is closed after the answer.
"""

from __future__ import annotations

import socket
import time

from gunicorn.workers.ggevent import GeventWorker
from werkzeug.exceptions import RequestTimeout

#: At least this much of a body in every window (about 1 KiB/s, averaged over a minute).
BODY_MIN_BYTES = 64 * 1024
BODY_WINDOW_SECONDS = 60.0


class BodyTooSlow(RequestTimeout):
    """The body stopped, or came slower than the floor: answered 408 by the app's handler."""

    def __init__(self, min_bytes: int, window_seconds: float) -> None:
        super().__init__(
            f"The request body arrived slower than {min_bytes} bytes in {window_seconds:g} s "
            "and was not taken; send it again over a faster or steadier connection."
        )


class ProgressSocket:
    """A client socket whose reads, while a request is served (`watch`), must bring at
    least `min_bytes` in every `window_seconds`; otherwise BodyTooSlow."""

    def __init__(self, sock, min_bytes: int, window_seconds: float) -> None:
        self._sock = sock
        self.min_bytes = min_bytes
        self.window_seconds = window_seconds
        self.request = None
        self.too_slow = False
        self._window_end = 0.0
        self._window_bytes = 0

    def __getattr__(self, name: str):
        return getattr(self._sock, name)

    def watch(self, request) -> None:
        self.request = request
        self._window_end = time.monotonic() + self.window_seconds
        self._window_bytes = 0

    def unwatch(self) -> None:
        self.request = None

    def recv(self, size: int, *flags) -> bytes:
        if self.too_slow:
            return b""  # what is left of that body is not read: the connection closes
        if self.request is None:
            return self._sock.recv(size, *flags)
        while True:
            left = self._window_end - time.monotonic()
            if left <= 0:
                self._next_window()
                continue
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(size, *flags)
            except TimeoutError:
                continue  # the window is over: judged at the top of the loop
            finally:
                self._sock.settimeout(None)  # writing the answer is not bounded by it
            self._window_bytes += len(data)
            return data

    def _next_window(self) -> None:
        if self._window_bytes + self._waiting() < self.min_bytes:
            self.too_slow = True
            self.request.force_close()  # the answer says Connection: close
            raise BodyTooSlow(self.min_bytes, self.window_seconds)
        self._window_end = time.monotonic() + self.window_seconds
        self._window_bytes = 0

    def _waiting(self) -> int:
        """Bytes the client sent that wait unread (up to the floor): when the app itself
        paused (MongoDB, the ffmpeg probe), the window is not the client's fault."""
        self._sock.settimeout(0.0)
        try:
            return len(self._sock.recv(self.min_bytes, socket.MSG_PEEK))
        except OSError:  # nothing waiting (BlockingIOError), or the connection is gone
            return 0
        finally:
            self._sock.settimeout(None)


class GatewayWorker(GeventWorker):
    """gunicorn's gevent worker, with the body-progress floor of this module."""

    body_min_bytes = BODY_MIN_BYTES
    body_window_seconds = BODY_WINDOW_SECONDS

    @classmethod
    def with_floor(cls, min_bytes: int, window_seconds: float) -> type[GatewayWorker]:
        """This worker with another floor (gunicorn.conf.py reads it from the environment)."""
        return type(
            cls.__name__,
            (cls,),
            {"body_min_bytes": min_bytes, "body_window_seconds": window_seconds},
        )

    def handle(self, listener, client, addr):
        client = ProgressSocket(client, self.body_min_bytes, self.body_window_seconds)
        super().handle(listener, client, addr)

    def handle_request(self, listener_name, req, sock, addr):
        sock.watch(req)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            sock.unwatch()
