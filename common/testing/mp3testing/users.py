"""Users made as an operator makes them: the auth service's own CLI, on the stack's MariaDB."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def create_user(email: str, password: str) -> None:
    """`flask --app server create-user EMAIL --password-stdin`, run in auth/."""
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "flask"), "--app", "server", "create-user", email]
        + ["--password-stdin"],
        cwd=ROOT / "auth",
        input=f"{password}\n",
        text=True,
        check=True,
        capture_output=True,
    )


def new_user(prefix: str = "user") -> tuple[str, str]:
    """A fresh user with a random password: (email, password)."""
    email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    create_user(email, password)
    return email, password
