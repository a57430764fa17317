"""The opt-in queue-depth scaling (deploy/components/keda, deploy/keda), checked as rendered.

kustomize refuses an overlay below the root kustomization that includes the root ("cycle
detected"), so deploy/keda holds the KEDA objects alone, and on a cluster its ScaledObject
takes over the root's CPU HPA. What the cluster ends up running is the root rendered with
the component: these tests build that from a folder beside the scratch copy of
tests/deploy_render.py and compare it with the default rendering, object by object.
No cluster runs here and kubernetes-validate knows no KEDA kinds: what KEDA itself would
say about the objects is not checked (deploy/README.md).
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import re
import shutil
import tempfile
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from deploy_render import ROOT, kustomize, load_yaml, render_dir, rendered_objects, run, tool
from test_deploy_checkers import KUBERNETES_VERSIONS, _checkov

pytestmark = pytest.mark.tools  # the checkers in .venv-deploy

COMPONENT = "deploy/components/keda"
OVERLAY = "deploy/keda"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
ADDED = {
    ("ScaledObject", "converter"),
    ("TriggerAuthentication", "converter-rabbitmq"),
    ("NetworkPolicy", "rabbitmq-from-keda"),
}
CPU_HPA = ("HorizontalPodAutoscaler", "converter")


@cache
def keda_rendered_text() -> str:
    """The root with the component, from a kustomization outside the root (see above)."""
    root = render_dir()
    overlay = Path(tempfile.mkdtemp(prefix="mp3keda-", dir=root.parent))
    atexit.register(shutil.rmtree, overlay, True)
    base = os.path.relpath(root, overlay)
    kustomization = {"resources": [base], "components": [f"{base}/{COMPONENT}"]}
    (overlay / "kustomization.yaml").write_text(json.dumps(kustomization))
    return kustomize(overlay)


def by_key(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}


@pytest.fixture(scope="module")
def default() -> dict[tuple[str, str], dict]:
    return by_key(rendered_objects())


@pytest.fixture(scope="module")
def keda() -> dict[tuple[str, str], dict]:
    return by_key(load_yaml(keda_rendered_text()))


@pytest.fixture(scope="module")
def scaled_object(keda) -> dict:
    return keda[("ScaledObject", "converter")]


@pytest.fixture(scope="module")
def trigger(scaled_object) -> dict:
    (only,) = scaled_object["spec"]["triggers"]
    return only


# --- what changes, and what does not ------------------------------------------------------


def test_the_default_rendering_keeps_the_cpu_hpa_and_has_no_keda(default):
    assert CPU_HPA in default
    assert not {kind for kind, _ in default} & KEDA_KINDS


def test_keda_replaces_the_cpu_hpa_and_changes_nothing_else(default, keda):
    assert set(default) - set(keda) == {CPU_HPA}
    assert set(keda) - set(default) == ADDED
    changed = [key for key in set(default) & set(keda) if default[key] != keda[key]]
    assert not changed, f"the component changed {sorted(changed)}"


def test_the_overlay_applies_exactly_the_additions(keda):
    """`kubectl apply -k deploy/keda` beside the root sends what the full rendering adds."""
    alone = by_key(load_yaml(kustomize(render_dir() / OVERLAY)))
    assert alone == {key: keda[key] for key in ADDED}


# --- the ScaledObject ----------------------------------------------------------------------


def test_the_scaled_object_scales_the_converter_within_the_hpas_bounds(
    default, keda, scaled_object
):
    hpa = default[CPU_HPA]["spec"]
    spec = scaled_object["spec"]
    target = spec["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        hpa["scaleTargetRef"]["apiVersion"],
        "Deployment",
        "converter",
    )
    assert ("Deployment", "converter") in keda
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
        hpa["minReplicas"],
        hpa["maxReplicas"],
    )


def test_on_a_running_cluster_the_scaled_object_takes_over_the_cpu_hpa(scaled_object):
    """`kubectl apply` cannot delete the CPU HPA; KEDA adopts it by name instead."""
    annotations = scaled_object["metadata"].get("annotations", {})
    assert annotations.get("scaledobject.keda.sh/transfer-hpa-ownership") == "true"
    hpa_config = scaled_object["spec"]["advanced"]["horizontalPodAutoscalerConfig"]
    assert hpa_config["name"] == CPU_HPA[1]


def test_the_trigger_is_the_video_queues_depth(keda, trigger):
    metadata = trigger["metadata"]
    settings = keda[("ConfigMap", "converter-configmap")]["data"]
    assert trigger["type"] == "rabbitmq"
    assert metadata["queueName"] == settings["VIDEO_QUEUE"] == "video"
    assert metadata["mode"] == "QueueLength"
    assert metadata["protocol"] == "amqp"
    # One converter per waiting video; the README explains why, from prefetch 1.
    assert metadata["value"] == "1"


def test_the_threshold_still_rests_on_prefetch_1():
    """A ready message means no converter is free only while each holds one message."""
    consumer = (ROOT / "common" / "mp3common" / "amqp.py").read_text()
    assert re.findall(r"basic_qos\(prefetch_count=(\d+)\)", consumer) == ["1"]


def test_the_trigger_reaches_the_rabbitmq_service_without_credentials(keda, trigger):
    host = urlsplit(trigger["metadata"]["host"])
    service = keda[("Service", "rabbitmq")]
    (amqp,) = [p for p in service["spec"]["ports"] if p["name"] == "amqp"]
    assert host.scheme == "amqp"
    assert host.username is None and host.password is None
    assert host.hostname == f"rabbitmq.{service['metadata']['namespace']}.svc"
    assert host.port == amqp["port"]
    assert host.path == "/%2F"  # the default vhost, as the services' RABBITMQ_URL


# --- credentials ---------------------------------------------------------------------------


def test_the_credentials_come_from_the_converters_own_objects(keda, trigger):
    auth = keda[("TriggerAuthentication", trigger["authenticationRef"]["name"])]
    assert auth["spec"] == {
        "secretTargetRef": [
            {"parameter": "password", "name": "converter-secret", "key": "RABBITMQ_PASSWORD"}
        ],
        "configMapTargetRef": [
            {"parameter": "username", "name": "converter-configmap", "key": "RABBITMQ_USER"}
        ],
    }
    assert "RABBITMQ_PASSWORD" in keda[("Secret", "converter-secret")]["data"]
    assert keda[("ConfigMap", "converter-configmap")]["data"]["RABBITMQ_USER"] == "converter"
    # The same account the converter itself logs in with.
    (container,) = keda[("Deployment", "converter")]["spec"]["template"]["spec"]["containers"]
    password = next(e for e in container["env"] if e["name"] == "RABBITMQ_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"] == {
        "name": "converter-secret",
        "key": "RABBITMQ_PASSWORD",
    }


def test_no_secret_value_is_in_the_keda_objects(keda):
    values = {
        base64.b64decode(value).decode()
        for (kind, _), obj in keda.items()
        if kind == "Secret"
        for value in (obj.get("data") or {}).values()
    } - {""}
    assert values, "the rendering has no secret values to look for"
    text = json.dumps([keda[key] for key in ADDED])
    leaked = [v for v in values if v in text or base64.b64encode(v.encode()).decode() in text]
    assert not leaked, "a secret value is written into the KEDA objects"


# --- the network ---------------------------------------------------------------------------


def test_only_kedas_operator_gets_through_to_amqp(keda, trigger):
    policy = keda[("NetworkPolicy", "rabbitmq-from-keda")]["spec"]
    rabbit = keda[("StatefulSet", "rabbitmq")]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= rabbit.items()
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    # One peer holding both selectors: operator pods in the keda namespace, not either.
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}},
            "podSelector": {"matchLabels": {"app": "keda-operator"}},
        }
    ]
    amqp_port = urlsplit(trigger["metadata"]["host"]).port
    assert rule["ports"] == [{"port": amqp_port, "protocol": "TCP"}]


# --- other people's tools, on the KEDA rendering ---------------------------------------------


@pytest.fixture(scope="module")
def keda_rendered_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rendered-keda") / "mp3converter-keda.yaml"
    path.write_text(keda_rendered_text())
    return path


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_keda_rendering_is_valid_kubernetes(keda_rendered_file, version):
    """Every object but KEDA's own kinds is validated; those it can only skip, with a warning."""
    result = run(
        tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(keda_rendered_file)
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    skipped = set(re.findall(r"Couldn't find schema for kind (\S+)", output))
    assert skipped == KEDA_KINDS, output


def test_checkov_passes_the_keda_rendering(keda_rendered_file):
    passed = _checkov("--framework", "kubernetes", "-d", str(keda_rendered_file.parent))
    assert passed["kubernetes"] > 100


def test_yamllint_passes_the_keda_files():
    result = run(tool("yamllint"), "--strict", COMPONENT, OVERLAY)
    assert result.returncode == 0, result.stdout + result.stderr
