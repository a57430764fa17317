"""A network namespace per pod, and forwarders that make the cluster's addresses answer.

podman 4.3's `kube play` puts a pod on its host's network and binds every containerPort
there, so two pods with a metrics port 9100 collide. Here each pod is played inside a
network namespace of its own (`ip netns`), as a pod has an IP of its own, and a `Forward`
makes PORT inside the namespace lead to 127.0.0.1:PORT of another namespace: the host's,
where the dev stack's stores listen, or another pod's.

A thread switches network namespace with setns(2), which is per thread in Linux; a socket
stays in the namespace it was made in. Needs root, as `ip netns` does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
#: The namespace this process started in: the host's, where the dev stack listens.
HOST = "/proc/self/ns/net"
_host_fd = os.open(HOST, os.O_RDONLY)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


@contextlib.contextmanager
def inside(path: str):
    """Run this thread's code in the network namespace at `path`, then come back."""
    if path == HOST:
        yield
        return
    target = os.open(path, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(_host_fd)
    finally:
        os.close(target)


class Namespace:
    """`ip netns add NAME` with its loopback up; `delete()` removes it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = f"/run/netns/{name}"
        if Path(self.path).exists():
            subprocess.run(["ip", "netns", "delete", name], check=False)
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)

    def run(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        """COMMAND with this namespace's network. nsenter, not `ip netns exec`: that one
        remounts /sys, and podman then finds no cgroups."""
        return subprocess.run(["nsenter", f"--net={self.path}", *command], **kwargs)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=False)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class Forward:
    """listen_on:port in namespace `listen_in` → 127.0.0.1:port in namespace `connect_in`."""

    def __init__(
        self, port: int, listen_in: str, connect_in: str = HOST, listen_on: str = "127.0.0.1"
    ) -> None:
        self.port = port
        self.connect_in = connect_in
        with inside(listen_in):
            self.listener = socket.create_server((listen_on, port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            with inside(self.connect_in):
                upstream = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def close(self) -> None:
        self.listener.close()
