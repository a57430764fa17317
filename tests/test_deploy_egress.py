"""Egress: each pod may open connections only to what its own settings say it talks to.

The NetworkPolicies are read from the rendered kustomization (tests/deploy_render.py) and
compared with the connections each service's rendered environment names: the stores'
URLs and addresses, resolved to the Service they name and the pods behind it, and the
mail server outside the cluster. A policy that admits more (another service, the
internet, every port) or less (a store the settings name) fails here, not in a cluster.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import pytest
from deploy_render import SERVICES, by_kind_and_name, rendered_objects
from test_deploy_consistency import (
    ENV_REFERENCE,
    container_env,
    names_settings_read,
    pod_spec,
    selects,
    the_container,
    workloads,
)

pytestmark = pytest.mark.tools  # the checkers in .venv-deploy


@pytest.fixture(scope="module")
def by_kind() -> dict[str, dict[str, dict]]:
    return by_kind_and_name(rendered_objects())


#: The settings that name a peer the service connects to: a URL, `host:port`, or a host
#: whose port is another setting (with its default).
URL_SETTINGS = {"MONGODB_URI": 27017, "RABBITMQ_URL": 5672}
ADDRESS_SETTINGS = {"AUTH_SVC_ADDRESS": 80}
HOST_SETTINGS = {"MYSQL_HOST": ("MYSQL_PORT", 3306), "SMTP_HOST": ("SMTP_PORT", 587)}
#: Settings whose names look like a peer's but that the service never connects to.
NOT_PEERS = {
    "PUBLIC_URL",  # written into mails: the users' address of the gateway
    "GMAIL_ADDRESS",  # the sender's mail address
    "METRICS_PORT",  # served, not reached
    "LOGIN_LIMIT_PER_ADDRESS",  # rate limits per client address
    "LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS",
}
PEER_NAME = re.compile(r"_(HOST|URI|URL|ADDRESS|PORT)$")
DNS = {("dns", 53, "UDP"), ("dns", 53, "TCP")}
#: What an address outside the cluster may never be: the cluster's and private ranges,
#: loopback, and link-local (169.254.169.254 is the cloud metadata service).
FORBIDDEN_RANGES = [
    ipaddress.ip_network(net)
    for net in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "127.0.0.0/8",
    )
]


def expanded_env(by_kind, service: str) -> dict[str, str]:
    """The container's environment as the kubelet gives it ($(NAME) expanded; a secret's
    value stands in as `secret`)."""
    env = {}
    for name, value in container_env(by_kind, the_container(by_kind, service)).items():
        value = "secret" if value is None else value
        env[name] = ENV_REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), value)
    return env


def peers_named_by_settings(env: dict[str, str]) -> set[tuple[str, int]]:
    """(host, port) of every peer the settings name."""
    peers = set()
    for name, default in URL_SETTINGS.items():
        if name in env:
            parts = urlsplit(env[name])
            peers.add((parts.hostname, parts.port or default))
    for name, default in ADDRESS_SETTINGS.items():
        if name in env:
            parts = urlsplit(env[name] if "://" in env[name] else f"http://{env[name]}")
            peers.add((parts.hostname, parts.port or default))
    for name, (port_name, default) in HOST_SETTINGS.items():
        if name in env:
            peers.add((env[name], int(env.get(port_name) or default)))
    return peers


def pod_port(service: dict, workloads_by_app: dict, port: int) -> int:
    """The container port a Service's `port` leads to (a policy names pods' ports)."""
    (entry,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    target = entry.get("targetPort", port)
    if isinstance(target, int):
        return target
    app = service["spec"]["selector"]["app"]
    for container in pod_spec(workloads_by_app[app])["containers"]:
        for declared in container.get("ports", []):
            if declared.get("name") == target:
                return declared["containerPort"]
    raise AssertionError(f"Service {service['metadata']['name']}: no port named {target}")


def expected_egress(by_kind, service: str) -> set[tuple[str, int, str]]:
    """(peer, port, protocol): `pod:APP` behind a Service, or `outside` for any other host."""
    apps = {
        w["spec"]["template"]["metadata"]["labels"]["app"]: w for w in workloads(by_kind).values()
    }
    wanted = set(DNS)
    for host, port in peers_named_by_settings(expanded_env(by_kind, service)):
        name = host.split(".")[0]
        if name in by_kind["Service"] and (host == name or host.startswith(f"{name}.")):
            target = by_kind["Service"][name]
            app = target["spec"]["selector"]["app"]
            wanted.add((f"pod:{app}", pod_port(target, apps, port), "TCP"))
        else:
            wanted.add(("outside", port, "TCP"))
    return wanted


def _rule_peers(rule: dict) -> set[str]:
    assert rule.get("to"), f"an egress rule to anywhere: {rule}"
    peers = set()
    for peer in rule["to"]:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            excepted = [ipaddress.ip_network(net) for net in block.get("except", [])]
            for forbidden in FORBIDDEN_RANGES:
                assert ipaddress.ip_network(block["cidr"]).overlaps(forbidden) is False or any(
                    forbidden.subnet_of(net) for net in excepted
                ), f"{block} lets the pod reach {forbidden}"
            peers.add("outside")
        elif "namespaceSelector" in peer:
            namespace = peer["namespaceSelector"].get("matchLabels", {})
            pods = peer.get("podSelector", {}).get("matchLabels", {})
            assert namespace == {"kubernetes.io/metadata.name": "kube-system"}, peer
            assert pods == {"k8s-app": "kube-dns"}, peer
            peers.add("dns")
        else:
            peers.add(f"pod:{peer['podSelector']['matchLabels']['app']}")
    return peers


def allowed_egress(by_kind, app: str) -> set[tuple[str, int, str]]:
    allowed = set()
    for policy in by_kind["NetworkPolicy"].values():
        spec = policy["spec"]
        if "Egress" not in spec.get("policyTypes", []):
            continue
        if not selects(spec["podSelector"].get("matchLabels", {}), {"app": app}):
            continue
        for rule in spec.get("egress", []):
            assert rule.get("ports"), f"{policy['metadata']['name']}: a rule for every port"
            for peer in _rule_peers(rule):
                for port in rule["ports"]:
                    allowed.add((peer, port["port"], port.get("protocol", "TCP")))
    return allowed


def test_nothing_leaves_a_pod_unless_a_policy_lets_it(by_kind):
    deny = [
        p
        for p in by_kind["NetworkPolicy"].values()
        if p["spec"]["podSelector"] == {}
        and "Egress" in p["spec"]["policyTypes"]
        and not p["spec"].get("egress")
    ]
    assert deny, "no default-deny egress policy"


@pytest.mark.parametrize("service", SERVICES)
def test_every_peer_the_settings_name_is_a_setting_we_know(service):
    """A new `…_URL` or `…_HOST` setting must be placed in the tables above, so that the
    egress check below sees it."""
    known = set(URL_SETTINGS) | set(ADDRESS_SETTINGS) | set(HOST_SETTINGS) | NOT_PEERS
    known |= {port for port, _ in HOST_SETTINGS.values()}
    unknown = {n for n in names_settings_read(service) if PEER_NAME.search(n)} - known
    assert not unknown, f"{service} reads {sorted(unknown)}: a peer? add it to the tables"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_reaches_exactly_what_its_settings_name(by_kind, service):
    assert allowed_egress(by_kind, service) == expected_egress(by_kind, service)


@pytest.mark.parametrize(
    ("service", "peers"),
    [
        ("auth", {"dns", "pod:mysql"}),
        ("gateway", {"dns", "pod:auth", "pod:mongodb", "pod:rabbitmq"}),
        # ffmpeg runs on files from the internet: no other service, and no internet.
        ("converter", {"dns", "pod:mongodb", "pod:rabbitmq"}),
        ("notification", {"dns", "pod:mongodb", "pod:rabbitmq", "outside"}),
    ],
)
def test_the_issue_s_table_of_peers(by_kind, service, peers):
    """The same, written out: a setting that moved somewhere unexpected shows here."""
    assert {peer for peer, _, _ in allowed_egress(by_kind, service)} == peers


def test_the_mail_server_port_is_the_notification_s_smtp_port(by_kind):
    env = expanded_env(by_kind, "notification")
    outside = {(port, protocol) for peer, port, protocol in allowed_egress(by_kind, "notification")
               if peer == "outside"}  # fmt: skip
    assert outside == {(int(env["SMTP_PORT"]), "TCP")}


@pytest.mark.parametrize("store", ["mysql", "mongodb", "rabbitmq"])
def test_the_stores_open_no_connection(by_kind, store):
    policies = [
        p
        for p in by_kind["NetworkPolicy"].values()
        if p["spec"]["podSelector"].get("matchLabels") == {"app": store}
        and "Egress" in p["spec"]["policyTypes"]
    ]
    assert policies, f"{store} has no egress policy of its own"
    assert allowed_egress(by_kind, store) == set()


def test_every_pod_has_an_egress_policy_of_its_own(by_kind):
    """Default-deny holds either way; its own policy says what the pod needs, in its folder."""
    missing = []
    for name, workload in workloads(by_kind).items():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        own = [
            p
            for p in by_kind["NetworkPolicy"].values()
            if p["spec"]["podSelector"].get("matchLabels")
            and selects(p["spec"]["podSelector"]["matchLabels"], labels)
            and "Egress" in p["spec"]["policyTypes"]
        ]
        if not own:
            missing.append(name)
    assert not missing, f"no egress policy selects {missing}"
