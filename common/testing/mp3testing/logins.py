"""HTTP from a chosen loopback address, as clients at different places would come.

The whole of 127.0.0.0/8 is this machine: a connection bound to 127.0.0.2 reaches the dev
gateway on 127.0.0.1:8080 and the gateway sees 127.0.0.2 as the client. The login rate
limits count per client address, so tests flood from an address of their own
(`random_loopback`) and never spend 127.0.0.1's allowance, which other tests log in from.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def random_loopback() -> str:
    """An address of 127.0.0.0/8 no other test uses (nor 127.0.0.1/2)."""
    a, b, c = secrets.randbelow(240) + 10, secrets.randbelow(256), secrets.randbelow(254) + 1
    return f"127.{a}.{b}.{c}"


def request_from(
    address: str,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    connection: http.client.HTTPConnection | None = None,
    timeout: float = 10,
) -> Answer:
    """One request from `address` (or on `connection`, kept alive, made by `connect_from`)."""
    parts = urlsplit(url)
    conn = connection or connect_from(address, url, timeout=timeout)
    try:
        conn.request(
            method, parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {}
        )
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        if connection is None:
            conn.close()


def connect_from(address: str, url: str, *, timeout: float = 10) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(
        parts.hostname, parts.port or 80, timeout=timeout, source_address=(address, 0)
    )


def basic(email: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def login_from(address: str, base_url: str, email: str, password: str, **kwargs) -> Answer:
    """POST /login with HTTP basic credentials, from `address`."""
    return request_from(
        address, "POST", f"{base_url}/login", headers=basic(email, password), **kwargs
    )
