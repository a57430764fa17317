"""The gateway's HTTP API as mp3c uses it (what /openapi.json documents), errors included.

Every refusal of the API is JSON `{"error", "message"}`; `ApiError` carries the message to
show and the exit code it means (see cli.py's table).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from typing import Any
from urllib.parse import unquote

import requests

TIMEOUT = (10, 60)


class ApiError(Exception):
    """What went wrong, in the API's own words, and the exit code it stands for."""

    def __init__(self, message: str, *, status: int = 0, error: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error

    @property
    def exit_code(self) -> int:
        if self.status == 401:
            return 3  # not logged in, or the token ended
        if self.status == 0 or self.status >= 500:
            return 5  # the server cannot be reached or is unavailable
        return 4  # the API refused the request (a bad option, a file too large, not found…)

    @classmethod
    def from_response(cls, status: int, body: bytes | str | None) -> ApiError:
        try:
            payload = requests.models.complexjson.loads(body or b"")
        except ValueError:
            payload = None
        if isinstance(payload, dict) and payload.get("message"):
            return cls(str(payload["message"]), status=status, error=payload.get("error"))
        return cls(f"the server answered {status}", status=status)


def unreachable(url: str, exc: Exception) -> ApiError:
    return ApiError(f"cannot reach {url} ({exc.__class__.__name__}); is the server up?")


class Api:
    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "mp3c/0.1"

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.auth_headers, **kwargs.pop("headers", {})}
        try:
            response = self.session.request(
                method, self.url + path, headers=headers, timeout=TIMEOUT, **kwargs
            )
        except requests.RequestException as exc:
            raise unreachable(self.url, exc) from None
        if response.status_code >= 400:
            raise ApiError.from_response(response.status_code, response.content)
        return response

    def login(self, email: str, password: str) -> str:
        return self.request("POST", "/login", auth=(email, password)).text.strip()

    def job(self, fid: str) -> dict[str, Any]:
        return self.request("GET", "/status", params={"fid": fid}).json()

    def jobs(self, per_page: int = 100) -> list[dict[str, Any]]:
        found, page = [], 1
        while True:
            answer = self.request("GET", "/jobs", params={"page": page, "per_page": per_page})
            body = answer.json()
            found.extend(body["jobs"])
            if not body.get("next"):
                return found
            page += 1

    def delete(self, fid: str) -> None:
        self.request("DELETE", f"/jobs/{fid}")

    def download(self, fid: str) -> tuple[str | None, int | None, Iterator[bytes]]:
        """(the server's file name, its size, its bytes as they come)."""
        response = self.request("GET", "/download", params={"fid": fid}, stream=True)
        size = response.headers.get("Content-Length")
        return (
            filename_of(response.headers.get("Content-Disposition", "")),
            int(size) if size and size.isdigit() else None,
            response.iter_content(256 * 1024),
        )


def filename_of(disposition: str) -> str | None:
    """The file name a Content-Disposition names (filename* first), without any folder."""
    star = re.search(r"filename\*=UTF-8''([^;\s]+)", disposition, re.I)
    message = Message()
    message["Content-Disposition"] = disposition
    name = unquote(star.group(1)) if star else message.get_filename()
    if not name:
        return None
    return name.replace("\\", "/").rsplit("/", 1)[-1] or None
