"""HTTPS beside HTTP on the ingresses, and the management UI's opt-in ingress, as rendered.

The certificate is the one `make k8s-secrets` (deploy/k8s-secrets.sh) makes into the
scratch copy the rendering uses; the management UI's ingress comes only with the
component deploy/components/rabbitmq-ui, rendered here beside the root as
tests/test_deploy_keda.py renders KEDA's. No ingress controller runs here: that nginx
serves both schemes is read from its documented annotations, not measured.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import pytest
from deploy_render import (
    ROOT,
    kustomize,
    load_yaml,
    render_dir,
    rendered_objects,
    run,
    tool,
)
from test_deploy_checkers import KUBERNETES_VERSIONS, _checkov

pytestmark = pytest.mark.tools  # the checkers in .venv-deploy

COMPONENT = "deploy/components/rabbitmq-ui"
OVERLAY = "deploy/rabbitmq-ui"
TLS_SECRET = "mp3converter-tls"
HOSTS = {"gateway-ingress": "mp3converter.com", "rabbitmq-ingress": "rabbitmq-manager.com"}
ADDED = {("Ingress", "rabbitmq-ingress"), ("NetworkPolicy", "rabbitmq-ui-from-ingress")}


@cache
def with_ui_text() -> str:
    """The root with the component, from a kustomization outside the root (kustomize
    refuses one below it that includes it)."""
    root = render_dir()
    overlay = Path(tempfile.mkdtemp(prefix="mp3ui-", dir=root.parent))
    atexit.register(shutil.rmtree, overlay, True)
    base = os.path.relpath(root, overlay)
    kustomization = {"resources": [base], "components": [f"{base}/{COMPONENT}"]}
    (overlay / "kustomization.yaml").write_text(json.dumps(kustomization))
    return kustomize(overlay)


def keyed(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.fixture(scope="module")
def default() -> dict[tuple[str, str], dict]:
    return keyed(rendered_objects())


@pytest.fixture(scope="module")
def with_ui() -> dict[tuple[str, str], dict]:
    return keyed(load_yaml(with_ui_text()))


def certificate_text(secret: dict, tmp_path: Path) -> tuple[str, Path, Path]:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
    key.write_bytes(base64.b64decode(secret["data"]["tls.key"]))
    text = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return text, cert, key


# --- HTTPS and HTTP ------------------------------------------------------------------------


@pytest.mark.parametrize("ingress", sorted(HOSTS))
def test_each_ingress_serves_its_host_over_tls_and_plain_http(with_ui, ingress):
    obj = with_ui[("Ingress", ingress)]
    (tls,) = obj["spec"]["tls"]
    assert tls == {"hosts": [HOSTS[ingress]], "secretName": TLS_SECRET}
    assert [rule["host"] for rule in obj["spec"]["rules"]] == [HOSTS[ingress]]
    # ingress-nginx redirects HTTP to HTTPS once a `tls` section exists, unless told not
    # to: the reference's `curl -X POST http://mp3converter.com/login` must still answer.
    # The management UI sends the administrator's password with every call: HTTPS only.
    annotations = obj["metadata"]["annotations"]
    plain_http = HOSTS[ingress] == "mp3converter.com"
    assert annotations["nginx.ingress.kubernetes.io/ssl-redirect"] == str(not plain_http).lower()
    assert (
        annotations.get("nginx.ingress.kubernetes.io/force-ssl-redirect", "false")
        == str(not plain_http).lower()
    )


def test_the_certificate_covers_both_names_and_matches_its_key(default, tmp_path):
    secret = default[("Secret", TLS_SECRET)]
    assert secret["type"] == "kubernetes.io/tls"
    text, cert, key = certificate_text(secret, tmp_path)
    assert "DNS:mp3converter.com" in text and "DNS:rabbitmq-manager.com" in text
    assert "TLS Web Server Authentication" in text
    # A server certificate, not an authority: trusted system-wide, its key (in the checkout
    # and the cluster's Secret) must not be able to sign for other names.
    assert re.search(r"Basic Constraints: critical\s+CA:FALSE", text), text
    cert_key = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-pubkey"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    key_key = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout"], capture_output=True, text=True, check=True
    ).stdout
    assert cert_key == key_key


def test_k8s_secrets_keeps_what_exists_and_adds_what_is_missing(tmp_path):
    script = str(ROOT / "deploy" / "k8s-secrets.sh")
    (tmp_path / "k8s-secrets.env").write_text("MONGODB_PASSWORD=old\nJWT_SECRET=mine\n")
    made = run(script, "k8s-secrets.env", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    values = dict(
        line.split("=", 1)
        for line in (tmp_path / "k8s-secrets.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert values["JWT_SECRET"] == "mine"
    for name in (
        "MONGODB_CONVERTER_PASSWORD",
        "RABBITMQ_ADMIN_PASSWORD",
        "RABBITMQ_GATEWAY_PASSWORD",
    ):
        assert len(values[name]) == 48
    first = (tmp_path / "k8s-tls.crt").read_bytes()
    assert run(script, "k8s-secrets.env", cwd=tmp_path).returncode == 0
    assert (tmp_path / "k8s-tls.crt").read_bytes() == first  # a certificate once trusted stays
    for name in ("k8s-tls.crt", "k8s-tls.key"):
        assert run("git", "check-ignore", "-q", name).returncode == 0


# --- the management UI: opt-in -------------------------------------------------------------


def test_by_default_the_management_ui_is_not_published(default):
    ingresses = {name for kind, name in default if kind == "Ingress"}
    assert ingresses == {"gateway-ingress"}
    for (kind, _), obj in default.items():
        if kind != "NetworkPolicy" or obj["spec"]["podSelector"] != {
            "matchLabels": {"app": "rabbitmq"}
        }:
            continue
        for rule in obj["spec"].get("ingress", []):
            assert 15672 not in {p["port"] for p in rule.get("ports", [])}


def test_the_component_adds_the_ui_ingress_and_its_policy_and_changes_nothing_else(
    default, with_ui
):
    assert set(with_ui) - set(default) == ADDED
    assert set(default) <= set(with_ui)
    changed = [key for key in default if default[key] != with_ui[key]]
    assert not changed, f"the component changed {changed}"
    policy = with_ui[("NetworkPolicy", "rabbitmq-ui-from-ingress")]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app": "rabbitmq"}}
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": 15672, "protocol": "TCP"}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    backend = with_ui[("Ingress", "rabbitmq-ingress")]["spec"]["rules"][0]["http"]["paths"][0]
    assert backend["backend"]["service"] == {"name": "rabbitmq", "port": {"number": 15672}}


def test_the_overlay_applies_exactly_the_additions(with_ui):
    alone = keyed(load_yaml(kustomize(render_dir() / OVERLAY)))
    assert alone == {key: with_ui[key] for key in ADDED}


def test_the_ui_rendering_is_valid_and_passes_checkov(tmp_path):
    path = tmp_path / "with-ui.yaml"
    path.write_text(with_ui_text())
    for version in KUBERNETES_VERSIONS:
        result = run(tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(path))
        assert result.returncode == 0, result.stdout + result.stderr
    assert _checkov("--framework", "kubernetes", "-d", str(tmp_path))["kubernetes"] > 100


def test_the_readme_says_how_to_trust_or_replace_the_certificate():
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert "k8s-tls.crt" in readme and "mp3converter-tls" in readme
