"""The rendered Deployments, run by podman the way a kubelet would run them.

A Deployment's pod template becomes `podman run` arguments: its image; the user and group
of its securityContext; a read-only root filesystem with a tmpfs for each emptyDir; all
capabilities dropped and no privilege escalation; its memory and CPU limits; and the
environment the kubelet would give it: `envFrom` ConfigMaps first, then `env`, with
`$(NAME)` expanded and `secretKeyRef` / `configMapKeyRef` looked up in the rendered
objects. Nothing is taken from anywhere else, so a setting a manifest misses or misspells
is missing in the container too.

Cluster DNS is played by `--add-host`: every Service name maps to the address where the
dev stack (or a container published on the host) answers on the Service's port.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The settings deploy/images.sh builds with: runc, the open-file limit, no bridge.
os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "deploy" / "podman" / "containers.conf"))
#: The services' Deployments, in the order they start: each one's dependencies first.
SERVICES = ("auth", "gateway", "converter", "notification")
IMAGE_PREFIX = "mp3img-"
#: slirp4netns gives every container a network of its own; this address is the host's
#: loopback seen from inside, where the dev stack's stores and the published ports are.
HOST_FROM_CONTAINER = "10.0.2.2"
NETWORK = "slirp4netns:allow_host_loopback=true"
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_QUANTITY = {"Ki": "k", "Mi": "m", "Gi": "g"}


def find(objects: Iterable[dict], kind: str, name: str) -> dict:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise LookupError(f"no {kind} {name} in the rendered kustomization")


def _data(obj: dict) -> dict[str, str]:
    """A ConfigMap's data, or a Secret's data decoded (the rendered Secrets are base64)."""
    if obj["kind"] == "Secret":
        import base64

        plain = {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
        return {**plain, **obj.get("stringData", {})}
    return dict(obj.get("data", {}))


def expand(value: str, known: Mapping[str, str]) -> str:
    """Kubernetes' $(NAME): the value of an earlier variable; unknown ones stay as written."""

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return known.get(name, match.group(0))

    return _REFERENCE.sub(one, value)


def container_env(objects: list[dict], container: dict) -> dict[str, str]:
    """The environment the kubelet gives `container`, in its order of precedence."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(_data(find(objects, "ConfigMap", source["configMapRef"]["name"])))
        if "secretRef" in source:
            env.update(_data(find(objects, "Secret", source["secretRef"]["name"])))
    for variable in container.get("env", []):
        name = variable["name"]
        if "value" in variable:
            env[name] = expand(variable["value"], env)
            continue
        reference = variable["valueFrom"]
        for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            if key in reference:
                data = _data(find(objects, kind, reference[key]["name"]))
                wanted = reference[key]["key"]
                if wanted not in data:
                    raise LookupError(
                        f"{name} refers to {kind} {reference[key]['name']} key {wanted}, "
                        f"which has only {sorted(data)}"
                    )
                env[name] = data[wanted]
    return env


def _memory(quantity: str) -> str:
    for suffix, short in _QUANTITY.items():
        if quantity.endswith(suffix):
            return quantity[: -len(suffix)] + short
    return quantity


def _cpus(quantity: str) -> str:
    return str(int(quantity[:-1]) / 1000) if quantity.endswith("m") else quantity


@dataclass
class Workload:
    """One Deployment's single container, as podman runs it (see the module docstring)."""

    name: str
    deployment: dict
    container: dict
    env: dict[str, str]
    service_ports: list[int] = field(default_factory=list)

    @classmethod
    def from_rendered(cls, objects: list[dict], name: str) -> Workload:
        deployment = find(objects, "Deployment", name)
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        labels = deployment["spec"]["template"]["metadata"].get("labels", {})
        ports = []
        for service in (o for o in objects if o["kind"] == "Service"):
            selector = service["spec"].get("selector", {})
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                ports += [p["port"] for p in service["spec"]["ports"]]
        return cls(name, deployment, container, container_env(objects, container), ports)

    @property
    def container_name(self) -> str:
        return IMAGE_PREFIX + self.name

    def port(self, name_or_number: str | int) -> int:
        if isinstance(name_or_number, int):
            return name_or_number
        for port in self.container.get("ports", []):
            if port.get("name") == name_or_number:
                return port["containerPort"]
        raise LookupError(f"{self.name} has no port named {name_or_number}")

    def run_args(self, env_file: Path, hosts: Iterable[str]) -> list[str]:
        """`podman run` arguments: the pod's security context, volumes, limits and env."""
        pod = self.deployment["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        security = {**pod_security, **self.container.get("securityContext", {})}
        args = ["--name", self.container_name, "--replace", "--network", NETWORK]
        args += [f"--add-host={host}:{HOST_FROM_CONTAINER}" for host in hosts]
        args += [f"--publish=127.0.0.1:{port}:{port}" for port in self.service_ports]
        args += [f"--user={security['runAsUser']}:{security.get('runAsGroup', 0)}"]
        if security.get("readOnlyRootFilesystem"):
            args += ["--read-only", "--read-only-tmpfs=false"]
        for drop in security.get("capabilities", {}).get("drop", []):
            args += [f"--cap-drop={drop.lower()}"]
        if security.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt=no-new-privileges"]
        empty_dirs = {v["name"]: v for v in pod.get("volumes", []) if "emptyDir" in v}
        for mount in self.container.get("volumeMounts", []):
            volume = empty_dirs.get(mount["name"])
            if volume is None:
                raise AssertionError(f"{self.name}: only emptyDir volumes run here ({mount})")
            size = volume["emptyDir"].get("sizeLimit")
            options = "rw,mode=1777" + (f",size={_memory(size)}" if size else "")
            args += [f"--tmpfs={mount['mountPath']}:{options}"]
        limits = self.container.get("resources", {}).get("limits", {})
        if "memory" in limits:
            args += [f"--memory={_memory(limits['memory'])}"]
        if "cpu" in limits:
            args += [f"--cpus={_cpus(limits['cpu'])}"]
        # The image's HEALTHCHECK is run on demand (`podman healthcheck run`): no systemd
        # here to run its timer.
        args += ["--health-interval=disable", f"--env-file={env_file}"]
        return [*args, self.container["image"]]


def write_env_file(path: Path, env: Mapping[str, str]) -> Path:
    """`env` as podman's --env-file, readable by root alone (it holds the secrets)."""
    path.touch(mode=0o600)
    path.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    return path


def podman(*args: str, input: str | None = None, timeout: float = 120, check: bool = True):
    """podman ARGS; with `check`, a failure raises with what podman said."""
    done = subprocess.run(
        ["podman", *args], input=input, capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return done


def inspect(container: str) -> dict:
    return json.loads(podman("inspect", container).stdout)[0]


def logs(container: str) -> str:
    done = podman("logs", container, check=False)
    return done.stdout + done.stderr


def wait_healthy(container: str, timeout: float = 90) -> None:
    """Until the image's HEALTHCHECK passes; fails with the container's log if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = inspect(container)["State"]
        if not state["Running"]:
            raise AssertionError(
                f"{container} exited with {state['ExitCode']}:\n{logs(container)[-3000:]}"
            )
        if podman("healthcheck", "run", container, check=False).returncode == 0:
            return
        time.sleep(1)
    raise AssertionError(f"{container} not healthy in {timeout} s:\n{logs(container)[-3000:]}")
