"""Fixtures of the images' tests: the rendered kustomization and the dev stores it meets.

Imported by run_images.py and kube_play.py (not a conftest: the system tests import
names from tests/conftest.py, and a second module called conftest would shadow it).
`make image-test` runs them after `dev/stack.sh stores`.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pika
import pytest
from deploy_render import rendered_objects_with
from pymongo import MongoClient
from workloads import SERVICES, Workload

ROOT = Path(__file__).resolve().parents[2]
DEV_ENV = ROOT / "var" / "dev.env"


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name] = value
    return values


@pytest.fixture(scope="module")
def dev() -> dict[str, str]:
    if not DEV_ENV.exists():
        pytest.fail(f"{DEV_ENV} is missing: run `make image-test` (it starts the dev stores)")
    return read_env_file(DEV_ENV)


@pytest.fixture(scope="module")
def rendered(dev) -> list[dict]:
    """The kustomization, rendered with the dev stack's secrets as k8s-secrets.env."""
    return rendered_objects_with(
        {
            "MYSQL_ROOT_PASSWORD": secrets.token_hex(16),  # MySQL's own: no MySQL image here
            "MYSQL_PASSWORD": dev["MYSQL_PASSWORD"],
            "JWT_SECRET": dev["JWT_SECRET"],
            "LOG_ACCOUNT_KEY": dev["LOG_ACCOUNT_KEY"],
            "MONGODB_ROOT_PASSWORD": secrets.token_hex(16),
            "RABBITMQ_ADMIN_PASSWORD": secrets.token_hex(16),  # the UI's: no broker image here
            # Each service's own accounts, which dev/stack.sh made in the dev stores.
            **{
                f"{store}_{service.upper()}_PASSWORD": dev[f"{store}_{service.upper()}_PASSWORD"]
                for store in ("MONGODB", "RABBITMQ")
                for service in ("gateway", "converter", "notification")
            },
            "GMAIL_PASSWORD": "",
        }
    )


@pytest.fixture(scope="module")
def workloads(rendered, dev) -> dict[str, Workload]:
    found = {name: Workload.from_rendered(rendered, name) for name in SERVICES}
    # What a user sets for their mail provider (notification/README.md).
    found["notification"].env.update(
        GMAIL_ADDRESS=dev["GMAIL_ADDRESS"],
        SMTP_HOST="smtp-sink",
        SMTP_PORT=dev["SMTP_PORT"],
        SMTP_SECURITY="none",
    )
    return found


@pytest.fixture(scope="module")
def hosts(rendered) -> list[str]:
    """Every Service name (cluster DNS), and the SMTP sink's."""
    return [o["metadata"]["name"] for o in rendered if o["kind"] == "Service"] + ["smtp-sink"]


def _on_host(uri: str, host: str, port: int) -> str:
    return uri.replace(f"@{host}:{port}", f"@127.0.0.1:{port}")


@pytest.fixture(scope="module")
def stores(workloads, dev) -> None:
    """The accounts the manifests name, in the dev stores, with the dev stack's secrets."""
    auth = workloads["auth"].env
    made = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "dev" / "bootstrap_db.py")],
        env={**dev, "MYSQL_DB": auth["MYSQL_DB"], "MYSQL_USER": auth["MYSQL_USER"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    # dev/stack.sh made each service's MongoDB and RabbitMQ accounts (the stand-in enforces
    # its role, the broker its rights); the manifests' URIs must work.
    for name in ("gateway", "converter", "notification"):
        env = workloads[name].env
        mongo = MongoClient(
            _on_host(env["MONGODB_URI"], "mongodb", 27017), serverSelectionTimeoutMS=5000
        )
        mongo[env["MONGODB_DB"]].command("ping")
        mongo.close()
        pika.BlockingConnection(
            pika.URLParameters(_on_host(env["RABBITMQ_URL"], "rabbitmq", 5672))
        ).close()
