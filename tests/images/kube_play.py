"""`podman kube play` of the rendered Deployments: every pod starts and passes its readiness
probe, as its manifest says it runs.

Each Deployment is played as the kustomization renders it, with only what podman 4.3 needs
to play it here (see `playable`), none of which changes what runs in the container:
- its Secrets become podman secrets first (4.3 reads a JSON map of the Secret's data);
  its ConfigMaps are handed over with --configmap;
- one replica: replicas would share a network namespace here, and so their ports;
- a network namespace of its own (4.3 binds every containerPort on its host, and every
  pod has a metrics port 9100), its Service names resolved by hostAliases to the address
  of that namespace on kube play's bridge, where forwarders lead to the dev stack's stores
  or to the other pods (netns.py);
- its emptyDir volumes named after the Deployment: 4.3 makes an emptyDir a named volume
  shared by every pod that uses the name, so the converter's and the notification
  service's /tmp (and their heartbeat files) would be one;
- `$(NAME)` in an env value (MONGODB_URI, RABBITMQ_URL): 4.3 passes it on unexpanded,
  so it is expanded here as the kubelet expands it (workloads.container_env);
- the mail settings, as in run_images.py.
What 4.3 ignores, and so is not checked here: StatefulSets, Services, Ingresses,
NetworkPolicies, the HPA, PDBs; readiness and startup probes (this test runs the readiness
probe as the kubelet would); a liveness probe on a named port becomes localhost:0.
"""

from __future__ import annotations

import copy
import json
import time

import pytest
import requests
from image_fixtures import dev, hosts, rendered, stores, workloads  # noqa: F401 - fixtures, by name
from netns import HOST, Forward, Namespace, inside
from workloads import SERVICES, container_env, find, podman

PROBE_TIMEOUT_SECONDS = 120
#: The bridge kube play puts pods on; inside each pod's namespace its gateway address is
#: that namespace's own, where the forwarders listen.
KUBE_NETWORK = "podman-default-kube-network"


def kube_gateway() -> str:
    if podman("network", "exists", KUBE_NETWORK, check=False).returncode != 0:
        podman("network", "create", KUBE_NETWORK)
    template = "{{range .Subnets}}{{.Gateway}}{{end}}"
    return podman("network", "inspect", KUBE_NETWORK, "--format", template).stdout.strip()


def playable(
    rendered: list[dict], name: str, mail: dict[str, str], gateway: str
) -> tuple[dict, list[dict]]:
    """The Deployment `name` as podman 4.3 can play it here, and the ConfigMaps it reads."""
    deployment = copy.deepcopy(find(rendered, "Deployment", name))
    deployment["spec"]["replicas"] = 1
    pod = deployment["spec"]["template"]["spec"]
    services = [o["metadata"]["name"] for o in rendered if o["kind"] == "Service"]
    pod["hostAliases"] = [{"ip": gateway, "hostnames": [*services, "smtp-sink"]}]
    renamed = {v["name"]: f"{name}-{v['name']}" for v in pod.get("volumes", []) if "emptyDir" in v}
    for volume in pod.get("volumes", []):
        volume["name"] = renamed.get(volume["name"], volume["name"])
    config_maps = []
    for container in pod["containers"]:
        for mount in container.get("volumeMounts", []):
            mount["name"] = renamed.get(mount["name"], mount["name"])
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                config_map = copy.deepcopy(
                    find(rendered, "ConfigMap", source["configMapRef"]["name"])
                )
                if name == "notification":
                    config_map["data"].update(mail)
                config_maps.append(config_map)
        # 4.3 does not expand $(NAME) in env values: done here as the kubelet does it.
        expanded = container_env(rendered, container)
        for variable in container.get("env", []):
            if "$(" in variable.get("value", ""):
                variable["value"] = expanded[variable["name"]]
    return deployment, config_maps


def secrets_of(deployment: dict) -> set[str]:
    names = set()
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for variable in container.get("env", []):
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                names.add(reference["name"])
    return names


def pod_container(name: str) -> str:
    return f"{name}-pod-0-{name}"


@pytest.fixture(scope="module")
def played(rendered, dev, stores, tmp_path_factory):
    """Every Deployment played, each in its own network namespace; removed afterwards."""
    folder = tmp_path_factory.mktemp("kube")
    mail = {
        "GMAIL_ADDRESS": dev["GMAIL_ADDRESS"],
        "SMTP_HOST": "smtp-sink",
        "SMTP_PORT": dev["SMTP_PORT"],
        "SMTP_SECURITY": "none",
    }
    namespaces = {name: Namespace(f"mp3kp-{name}") for name in SERVICES}
    # Where each Service answers: a played Deployment's namespace, else the host (stores).
    answers = {}
    for service in (o for o in rendered if o["kind"] == "Service"):
        selected = service["spec"].get("selector", {}).get("app")
        where = namespaces[selected].path if selected in namespaces else HOST
        for port in service["spec"]["ports"]:
            answers[port["port"]] = (selected, where)
    answers[int(dev["SMTP_PORT"])] = (None, HOST)
    forwards = [
        # Every address of the pod's own namespace: its bridge's too, made at play time.
        Forward(port, namespaces[name].path, where, listen_on="0.0.0.0")  # noqa: S104
        for name in SERVICES
        for port, (owner, where) in answers.items()
        if owner != name
    ]
    gateway = kube_gateway()
    plays = {name: playable(rendered, name, mail, gateway) for name in SERVICES}
    volumes = {
        volume["name"]
        for deployment, _ in plays.values()
        for volume in deployment["spec"]["template"]["spec"].get("volumes", [])
    }
    podman("volume", "rm", "--force", *volumes, check=False)  # an earlier run's
    files, secrets = {}, set()
    try:
        for name, (deployment, config_maps) in plays.items():
            for secret in secrets_of(deployment):
                data = find(rendered, "Secret", secret)["data"]
                path = folder / f"{secret}.json"
                path.write_text(json.dumps({k: "".join(v.split()) for k, v in data.items()}))
                podman("secret", "rm", secret, check=False)
                podman("secret", "create", secret, str(path))
                secrets.add(secret)
            arguments = []
            for config_map in config_maps:
                path = folder / f"{config_map['metadata']['name']}.json"
                path.write_text(json.dumps(config_map))
                arguments += ["--configmap", str(path)]
            files[name] = folder / f"{name}.json"
            files[name].write_text(json.dumps(deployment))
            done = namespaces[name].run(
                "podman", "kube", "play", "--replace", *arguments, str(files[name]),
                capture_output=True, text=True, timeout=180,
            )  # fmt: skip
            assert done.returncode == 0, f"kube play {name}:\n{done.stderr}"
        yield namespaces
    finally:
        for name, path in files.items():
            namespaces[name].run(
                "podman", "kube", "down", str(path), capture_output=True, timeout=120
            )
        podman("volume", "rm", "--force", *volumes, check=False)
        for secret in secrets:
            podman("secret", "rm", secret, check=False)
        for forward in forwards:
            forward.close()
        for namespace in namespaces.values():
            namespace.delete()


def readiness(played, rendered, name: str) -> tuple[bool, str]:
    """The Deployment's readiness probe, run once as the kubelet runs it."""
    [container] = find(rendered, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    probe = container["readinessProbe"]
    if "exec" in probe:
        done = podman("exec", pod_container(name), *probe["exec"]["command"], check=False)
        return done.returncode == 0, done.stderr
    port = probe["httpGet"]["port"]
    if isinstance(port, str):
        port = next(p["containerPort"] for p in container["ports"] if p.get("name") == port)
    try:
        with inside(played[name].path):
            answer = requests.get(f"http://127.0.0.1:{port}{probe['httpGet']['path']}", timeout=3)
    except requests.RequestException as exc:
        return False, str(exc)
    return answer.status_code < 400, answer.text


@pytest.mark.parametrize("name", SERVICES)
def test_every_pod_starts_and_passes_its_readiness_probe(played, rendered, name):
    deadline = time.monotonic() + PROBE_TIMEOUT_SECONDS
    ready, said = readiness(played, rendered, name)
    while not ready and time.monotonic() < deadline:
        state = json.loads(podman("inspect", pod_container(name)).stdout)[0]["State"]
        assert state["Running"], podman("logs", pod_container(name), check=False).stderr
        time.sleep(1)
        ready, said = readiness(played, rendered, name)
    assert ready, f"{name} not ready in {PROBE_TIMEOUT_SECONDS} s: {said}"


@pytest.mark.parametrize("name", SERVICES)
def test_the_pod_runs_as_its_security_context_says(played, rendered, name):
    config = json.loads(podman("inspect", pod_container(name)).stdout)[0]
    assert config["HostConfig"]["ReadonlyRootfs"] is True
    assert config["Config"]["User"] == "10001:10001"
    limits = find(rendered, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    memory = limits["resources"]["limits"]["memory"]
    assert config["HostConfig"]["Memory"] == int(memory.removesuffix("Mi")) * 1024 * 1024
