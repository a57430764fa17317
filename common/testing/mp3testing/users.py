"""Users made as an operator makes them: the auth service's own CLI, on the stack's MariaDB."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def auth_cli(*args: str, stdin: str = "") -> str:
    """`flask --app server ARGS...`, run in auth/ as an operator would: its output."""
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "flask"), "--app", "server", *args],
        cwd=ROOT / "auth",
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
    ).stdout


def create_user(email: str, password: str) -> None:
    """`flask --app server create-user EMAIL --password-stdin`."""
    auth_cli("create-user", email, "--password-stdin", stdin=f"{password}\n")


def set_password(email: str, password: str) -> None:
    """`flask --app server set-password EMAIL --password-stdin`."""
    auth_cli("set-password", email, "--password-stdin", stdin=f"{password}\n")


def delete_user(email: str) -> None:
    """`flask --app server delete-user EMAIL`."""
    auth_cli("delete-user", email)


def new_user(prefix: str = "user") -> tuple[str, str]:
    """A fresh user with a random password: (email, password)."""
    email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    create_user(email, password)
    return email, password
