"""RabbitMQ's per-service accounts, on the real broker: each can do its work and no more.

The accounts come from the one table, rabbit/manifests/rabbitmq-accounts.sh, applied
through the management API as `make run` applies it, here under fresh user and queue
names so that nothing of the running stack is touched. Each account then runs the shared
AMQP code (mp3common.amqp) as its service does: a missing right fails here; a right too
many (the converter publishing to `video`) fails here too.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import uuid
from urllib.parse import urlsplit

import pika
import pika.exceptions
import pytest
import requests
from conftest import ROOT

from mp3common.amqp import (
    Consumer,
    Outgoing,
    Publisher,
    PublishError,
    dead_letter_queue,
    publish_exchange,
)
from mp3testing import (
    MANAGEMENT_URL,
    RunningConsumer,
    delete_queues,
    get_message,
    wait_until,
)

pytestmark = pytest.mark.stack  # the real RabbitMQ

SCRIPT = ROOT / "rabbit" / "manifests" / "rabbitmq-accounts.sh"
SERVICES = ("gateway", "converter", "notification")


def _api() -> tuple[str, str]:
    parts = urlsplit(MANAGEMENT_URL)
    base = f"{parts.scheme}://{parts.hostname}:{parts.port}/api"
    return base, f"{parts.username}:{parts.password}"


def run_script(env: dict[str, str], *args: str) -> str:
    base, credentials = _api()
    result = subprocess.run(
        [str(SCRIPT), *args],
        env={
            "PATH": os.environ["PATH"],
            "RABBITMQ_API": base,
            "RABBITMQ_API_CREDENTIALS": credentials,
            **env,
        },  # fmt: skip
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def accounts():
    """Fresh accounts and queue names: {service: (user, amqp URL)}, and the queue names."""
    tag = uuid.uuid4().hex[:8]
    video, mp3 = f"t15.{tag}.video", f"t15.{tag}.mp3"
    env = {"VIDEO_QUEUE": video, "MP3_QUEUE": mp3}
    made = {}
    for service in SERVICES:
        user, password = f"t15-{tag}-{service}", secrets.token_hex(16)
        env[f"RABBITMQ_{service.upper()}_USER"] = user
        env[f"RABBITMQ_{service.upper()}_PASSWORD"] = password
        made[service] = (user, f"amqp://{user}:{password}@127.0.0.1:5672/%2F")
    run_script(env)
    yield made, video, mp3
    base, credentials = _api()
    for user, _ in made.values():
        requests.delete(f"{base}/users/{user}", auth=tuple(credentials.split(":", 1)), timeout=5)
    delete_queues(video, mp3)


def refused(url: str, exchange: str, routing_key: str) -> int | None:
    """The broker's reply code to one confirmed publish (None: it took the message)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange, routing_key, b"{}", mandatory=True)
        return None
    except pika.exceptions.ChannelClosedByBroker as exc:
        return exc.reply_code
    except pika.exceptions.UnroutableError:
        return None
    finally:
        if connection.is_open:
            connection.close()


class Forward:
    """The converter's shape: every message handled, one follow-up published to `out`."""

    def __init__(self, out: str) -> None:
        self.out = out

    def __call__(self, delivery, _stopping):
        return [Outgoing(self.out, {"from": delivery.body})]


def test_each_account_does_its_service_s_work(accounts):
    made, video, mp3 = accounts
    Publisher(made["gateway"][1], [video], name="t15 gateway").publish(video, {"n": 1})
    converter = Consumer(made["converter"][1], video, Forward(mp3), publishes_to=[mp3])
    reaper = Consumer(
        made["converter"][1],
        dead_letter_queue(video),
        Forward(mp3),
        publishes_to=[mp3],
        dead_letters_of=video,
    )
    taken = []
    notifier = Consumer(made["notification"][1], mp3, lambda d, _: taken.append(d.body))
    with RunningConsumer(reaper), RunningConsumer(converter), RunningConsumer(notifier):
        assert wait_until(lambda: taken)
    assert taken == [{"from": {"n": 1}}]


def test_the_converter_cannot_publish_to_video(accounts):
    made, video, mp3 = accounts
    url = made["converter"][1]
    assert refused(url, publish_exchange(video), video) == 403  # the gateway's exchange
    assert refused(url, "", video) == 403  # the default exchange reaches every queue
    assert refused(url, "", mp3) == 403
    with pytest.raises(PublishError):
        Publisher(url, [video], name="t15 converter as gateway").publish(video, {"n": 2})
    assert get_message(video, timeout=0.5) is None


@pytest.mark.parametrize("service", ["gateway", "notification"])
def test_no_other_account_publishes_where_it_should_not(accounts, service):
    made, video, mp3 = accounts
    url = made[service][1]
    assert refused(url, publish_exchange(mp3), mp3) == 403  # only the converter feeds mp3
    assert refused(url, "", video) == 403
    if service == "notification":
        assert refused(url, publish_exchange(video), video) == 403


def test_no_service_account_may_use_the_management_ui(accounts):
    made, _, _ = accounts
    base, _ = _api()
    for url in (url for _, url in made.values()):
        parts = urlsplit(url)
        answer = requests.get(f"{base}/overview", auth=(parts.username, parts.password), timeout=5)
        assert answer.status_code == 401


def supervised_pids() -> set[int]:
    """The processes of the services `make run` runs, and their children (gunicorn's)."""
    ctl = [
        str(ROOT / ".venv" / "bin" / "supervisorctl"),
        "-c",
        str(ROOT / "dev" / "supervisord.conf"),
    ]
    status = subprocess.run([*ctl, "status", "services:*"], capture_output=True, text=True)
    pids = {int(pid) for pid in re.findall(r"pid (\d+)", status.stdout)}
    children = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True)
    for line in children.stdout.splitlines():
        pid, ppid = (int(n) for n in line.split())
        if ppid in pids:
            pids.add(pid)
    return pids


def test_the_dev_stack_has_the_same_accounts_and_its_services_use_them():
    """`make run` applied the same table; each running service logs in as its own user."""
    base, credentials = _api()
    auth = tuple(credentials.split(":", 1))
    env = {name: os.environ[name] for name in ("VIDEO_QUEUE", "MP3_QUEUE") if name in os.environ}
    table = [line.split("\t") for line in run_script(env, "--print").splitlines()]
    permissions = {p["user"]: p for p in requests.get(f"{base}/permissions", auth=auth,
                                                      timeout=5).json()}  # fmt: skip
    for user, configure, write, read, _tags in table:
        assert user in permissions, f"make run did not create {user}"
        given = permissions[user]
        assert (given["configure"], given["write"], given["read"]) == (configure, write, read)
    users = {row[0] for row in table}
    pids = supervised_pids()
    by_service = {}
    for connection in requests.get(f"{base}/connections", auth=auth, timeout=5).json():
        name = connection.get("client_properties", {}).get("connection_name") or ""
        service, pid = name.split(" ")[0], re.search(r"(?::| pid )(\d+)", name)
        if service in SERVICES and pid and int(pid.group(1)) in pids:  # not a test's own
            by_service.setdefault(service, set()).add(connection["user"])
    assert set(by_service) >= {"converter", "notification"}, by_service
    for service, logged_in in by_service.items():
        assert logged_in == {service}, f"{service} logs in as {logged_in}"
        assert logged_in <= users
