"""An account per service, with only its rights: checked offline over the rendered objects.

MongoDB: each service logs in as its own user, whose role (gateway/manifests/mongodb-init.js)
names exactly the collections the service's code names. RabbitMQ: each service's
configure/write/read regexps (rabbit/manifests/rabbitmq-accounts.sh) match exactly the
names mp3common.amqp declares, binds, consumes and publishes for it; the management UI's
administrator is no service's. The same rules on the real stores, with the dev stack's
accounts: tests/test_rabbitmq_accounts.py, tests/test_mongodb_accounts.py.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from deploy_render import ROOT, by_kind_and_name, rendered_objects
from test_deploy_consistency import (
    container_env,
    decoded,
    pod_spec,
    the_container,
)

from mp3common.amqp import dead_letter_exchange, dead_letter_queue, publish_exchange

pytestmark = pytest.mark.tools  # the checkers in .venv-deploy


@pytest.fixture(scope="module")
def by_kind() -> dict[str, dict[str, dict]]:
    return by_kind_and_name(rendered_objects())


SERVICES = ("gateway", "converter", "notification")
MONGODB_INIT = ROOT / "gateway" / "manifests" / "mongodb-init.js"
RABBITMQ_ACCOUNTS = ROOT / "rabbit" / "manifests" / "rabbitmq-accounts.sh"
BEGIN, END = "/* roles:begin */", "/* roles:end */"


def roles() -> dict[str, dict[str, list[str]]]:
    text = MONGODB_INIT.read_text()
    return json.loads(text[text.index(BEGIN) + len(BEGIN) : text.index(END)])


def store_env(by_kind, store: str) -> dict[str, tuple[str, str, str]]:
    """The store container's variables taken from elsewhere: {NAME: (kind, object, key)}."""
    (container,) = pod_spec(by_kind["StatefulSet"][store])["containers"]
    refs = {}
    for item in container.get("env", []):
        for ref, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            if ref in item.get("valueFrom", {}):
                source = item["valueFrom"][ref]
                refs[item["name"]] = (kind, source["name"], source["key"])
    return refs


def value(by_kind, ref: tuple[str, str, str]) -> str:
    kind, name, key = ref
    obj = by_kind[kind][name]
    return decoded(obj)[key] if kind == "Secret" else obj["data"][key]


# --- MongoDB -------------------------------------------------------------------------------


def service_code(service: str) -> str:
    files = [p for p in (ROOT / service).rglob("*.py") if "tests" not in p.parts]
    return "\n".join(p.read_text() for p in sorted(files))


def collections_named_by(service: str) -> set[str]:
    """The collections a service's own code names, the ways this code base names them."""
    code = service_code(service)
    found = set()
    if re.search(r"\bJobs\(", code) or '["jobs"]' in code:
        found.add("jobs")  # mp3common.jobs.Jobs
    for constant, bucket in (("VIDEO_BUCKET", "videos"), ("MP3_BUCKET", "mp3s")):
        if re.search(rf"\b{constant}\b", code):
            found |= {f"{bucket}.files", f"{bucket}.chunks"}  # a GridFS bucket
    if '.uploading"' in code:
        found.add("videos.uploading")  # gridfs_writer's marks of uploads in progress
    for prefix in re.findall(r'shared_limiter\(\s*\w+,\s*"(\w+)"', code):
        found |= {f"{prefix}_counters", f"{prefix}_windows"}  # limits' MongoDB storage
    found |= set(re.findall(r'^COLLECTION\s*=\s*"([\w.]+)"', code, re.M))
    return found


def test_each_service_has_a_role_of_its_own_and_no_built_in_one():
    table = roles()
    assert set(table) == set(SERVICES)
    text = MONGODB_INIT.read_text()
    code = text[text.index(END) :]  # after the table: what the script does with it
    assert "readWrite" not in code and "dbOwner" not in code
    assert "const roles = [{ role: service, db: name }];" in code


@pytest.mark.parametrize("service", SERVICES)
def test_each_role_names_exactly_the_collections_its_service_s_code_names(service):
    granted = set(roles()[service])
    named = collections_named_by(service)
    assert named - granted == set(), f"{service}'s code uses {named - granted}, its role lacks them"
    assert granted - named == set(), f"{service}'s role grants {granted - named}, unused"


def test_the_converter_reads_videos_and_writes_mp3s_and_jobs_only():
    """The issue's own words: it reads videos, writes MP3s and its jobs; nothing else."""
    converter = {c: set(a) for c, a in roles()["converter"].items()}
    assert set(converter) == {"jobs", "videos.files", "videos.chunks", "mp3s.files", "mp3s.chunks"}
    assert converter["jobs"] == {"find", "update"}  # no insert, no remove: jobs are the gateway's
    assert {"insert", "update"}.isdisjoint(converter["videos.files"] | converter["videos.chunks"])
    every_action = set().union(*converter.values())
    assert every_action <= {"find", "insert", "update", "remove", "createIndex", "listIndexes"}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_logs_in_to_mongodb_as_its_own_account(by_kind, service):
    env = container_env(by_kind, the_container(by_kind, service))
    assert env["MONGODB_USER"] == service
    assert "$(MONGODB_USER):$(MONGODB_PASSWORD)@" in env["MONGODB_URI"]
    # mongodb-init.js makes the account from the store's variables: the same user and password.
    refs = store_env(by_kind, "mongodb")
    upper = service.upper()
    assert refs[f"MONGODB_{upper}_USER"] == ("ConfigMap", f"{service}-configmap", "MONGODB_USER")
    secret = decoded(by_kind["Secret"][f"{service}-secret"])
    assert value(by_kind, refs[f"MONGODB_{upper}_PASSWORD"]) == secret["MONGODB_PASSWORD"]


def test_no_two_services_share_a_password(by_kind):
    for store in ("MONGODB", "RABBITMQ"):
        passwords = [
            decoded(by_kind["Secret"][f"{s}-secret"])[f"{store}_PASSWORD"] for s in SERVICES
        ]
        assert len(set(passwords)) == len(SERVICES), store


# --- RabbitMQ ------------------------------------------------------------------------------


def rights_needed(
    declares: set[str], consumes: set[str], produces: set[str]
) -> dict[str, set[str]]:
    """What RabbitMQ checks when mp3common.amqp runs for a service (see rabbitmq-accounts.sh)."""
    configure, write, read = set(), set(), set()
    for queue in declares:  # declare_queue: the queue, its dead-letter queue and exchange
        dlq, dlx = dead_letter_queue(queue), dead_letter_exchange(queue)
        configure |= {queue, dlq, dlx}
        write |= {dlq, dlx}  # binding the dead-letter queue; a queue's dead-letter exchange
        read |= {queue, dlx}
    for queue in produces:  # declare_publishing, then basic_publish
        configure.add(publish_exchange(queue))
        write |= {queue, publish_exchange(queue)}
        read.add(publish_exchange(queue))
    read |= consumes
    return {"configure": configure, "write": write, "read": read}


def the_table(by_kind) -> dict[str, dict[str, str]]:
    """rabbitmq-accounts.sh --print, with the broker pod's own variables."""
    refs = store_env(by_kind, "rabbitmq")
    env = {name: value(by_kind, ref) for name, ref in refs.items() if "PASSWORD" not in name}
    printed = subprocess.run(
        ["bash", str(RABBITMQ_ACCOUNTS), "--print"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    table = {}
    for line in printed.splitlines():
        user, configure, write, read, tags = line.split("\t")
        table[user] = {"configure": configure, "write": write, "read": read, "tags": tags}
    return table


@pytest.fixture(scope="module")
def queues(by_kind) -> dict[str, str]:
    gateway = container_env(by_kind, the_container(by_kind, "gateway"))
    converter = container_env(by_kind, the_container(by_kind, "converter"))
    notification = container_env(by_kind, the_container(by_kind, "notification"))
    assert converter["VIDEO_QUEUE"] == gateway["VIDEO_QUEUE"]
    assert converter["MP3_QUEUE"] == notification["MP3_QUEUE"]
    return {"video": gateway["VIDEO_QUEUE"], "mp3": notification["MP3_QUEUE"]}


def uses(service: str, video: str, mp3: str) -> tuple[set[str], set[str], set[str]]:
    """(declares, consumes, produces), as each service's code builds its Publisher/Consumers."""
    return {
        "gateway": ({video}, set(), {video}),
        # The `video` consumer, and the reaper on its dead letters; both publish to `mp3`.
        "converter": ({video, mp3}, {video, dead_letter_queue(video)}, {mp3}),
        "notification": ({mp3}, {mp3}, set()),
    }[service]


@pytest.mark.parametrize("service", SERVICES)
def test_each_rabbitmq_account_has_exactly_its_service_s_rights(by_kind, queues, service):
    video, mp3 = queues["video"], queues["mp3"]
    table = the_table(by_kind)
    user = container_env(by_kind, the_container(by_kind, service))["RABBITMQ_USER"]
    assert user == service and user in table
    needed = rights_needed(*uses(service, video, mp3))
    everything = {
        name
        for queue in (video, mp3)
        for name in (
            queue,
            dead_letter_queue(queue),
            dead_letter_exchange(queue),
            publish_exchange(queue),
        )  # fmt: skip
    } | {"amq.default", "amq.direct", "amq.topic", "other", "video2", f"x{video}"}
    for kind in ("configure", "write", "read"):
        pattern = re.compile(table[user][kind])
        matched = {name for name in everything if pattern.search(name)}
        assert matched == needed[kind], f"{service} {kind}: {table[user][kind]}"
    assert table[user]["tags"] == ""  # no management UI


def test_the_converter_may_not_publish_to_video(by_kind, queues):
    write = re.compile(the_table(by_kind)["converter"]["write"])
    assert not write.search(publish_exchange(queues["video"]))
    assert not write.search("amq.default")  # the default exchange reaches every queue


def test_the_management_ui_has_its_own_administrator(by_kind):
    (container,) = pod_spec(by_kind["StatefulSet"]["rabbitmq"])["containers"]
    literal = {e["name"]: e.get("value") for e in container["env"]}
    admin = literal["RABBITMQ_DEFAULT_USER"]
    assert admin == literal["RABBITMQ_ADMIN_USER"] and admin not in SERVICES
    refs = store_env(by_kind, "rabbitmq")
    admin_password = value(by_kind, refs["RABBITMQ_DEFAULT_PASS"])
    for service in SERVICES:
        secret = decoded(by_kind["Secret"][f"{service}-secret"])
        assert secret["RABBITMQ_PASSWORD"] != admin_password
        assert (
            value(by_kind, refs[f"RABBITMQ_{service.upper()}_PASSWORD"])
            == secret["RABBITMQ_PASSWORD"]
        )
        assert value(by_kind, refs[f"RABBITMQ_{service.upper()}_USER"]) == service
    hook = container["lifecycle"]["postStart"]["exec"]["command"]
    assert hook == ["bash", "/etc/rabbitmq/accounts/rabbitmq-accounts.sh"]
    accounts = {c["metadata"]["name"].rsplit("-", 1)[0]: c for c in by_kind["ConfigMap"].values()}
    assert (
        accounts["rabbitmq-accounts"]["data"]["rabbitmq-accounts.sh"]
        == RABBITMQ_ACCOUNTS.read_text()
    )
