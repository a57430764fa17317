"""System tests: the stack `make run` started, driven from outside as a user would.

Nothing here imports a service. Users are made with the auth service's own CLI, requests
go over HTTP (often with a real `curl`), messages are read over AMQP.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests

from mp3testing.users import new_user as make_user

ROOT = Path(__file__).resolve().parent.parent
AUTH_URL = os.environ.get("AUTH_URL", "http://127.0.0.1:5000")
GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")


@pytest.fixture
def new_user():
    """A function making a fresh user on the running stack: returns (email, password)."""
    return make_user


def curl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real curl, as the README's commands do; stdout as text."""
    return subprocess.run(
        ["curl", "-sS", *args], capture_output=True, text=True, check=check, timeout=120
    )


def login(base_url: str, email: str, password: str) -> str:
    response = requests.post(f"{base_url}/login", auth=(email, password), timeout=10)
    response.raise_for_status()
    return response.text


@pytest.fixture
def signed_in(new_user):
    """A function making a fresh user and logging it in: returns (email, a requests.Session
    sending its Bearer token)."""

    def sign_in(label: str) -> tuple[str, requests.Session]:
        address, password = make_user(label)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {login(GATEWAY_URL, address, password)}"
        return address, session

    return sign_in
