"""The deployment checked by other people's tools, offline: schema, policy, lint.

Each tool runs on what a user would apply: the rendered kustomization (with generated test
secrets), the four Dockerfiles, every YAML file, and the GitHub workflows. Nothing here
proves the images build or the pods start: no Docker engine or cluster runs on these
machines (deploy/README.md says which parts were verified where).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deploy_render import ROOT, SERVICES, rendered_text, run, tool

pytestmark = pytest.mark.tools  # the checkers in .venv-deploy

# Kubernetes versions the rendered objects must be valid for: the newest schemas
# kubernetes-validate bundles, and an older release minikube clusters still run.
KUBERNETES_VERSIONS = ("1.37.0", "1.33.0")

# checkov's checks we do not meet, each for a reason; every other check must pass.
CHECKOV_SKIPS = {
    # Images by digest: ours are built into minikube and have no registry digest; the
    # upstream ones (mysql, mongo, rabbitmq) are pinned by exact version tag instead.
    "CKV_K8S_43",
    # imagePullPolicy Always would make minikube pull our locally built images from a
    # registry that does not have them; tags are exact versions, never `latest`.
    "CKV_K8S_15",
    # Secrets as files: the services read their settings from the environment (the
    # reference's names); each pod gets only its own keys, through secretKeyRef.
    "CKV_K8S_35",
    # UID above 10000: our images run as 10001 (tests/test_deploy_consistency.py checks
    # it); MySQL, MongoDB and RabbitMQ run as their images' own user 999, whose files
    # and volumes those images expect.
    "CKV_K8S_40",
}


@pytest.fixture(scope="module")
def rendered_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rendered") / "mp3converter.yaml"
    path.write_text(rendered_text())
    return path


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_kustomization_is_valid_kubernetes(rendered_file, version):
    result = run(
        tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(rendered_file)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_would_catch_a_misspelt_field(tmp_path):
    """The validator is not vacuous: one unknown field in a Deployment fails it."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(rendered_text().replace("readinessProbe:", "readinesProbe:", 1))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", str(broken))
    assert result.returncode != 0


def _checkov(*args: str) -> dict:
    result = run(
        tool("checkov"),
        "--skip-download",
        "--quiet",
        "--output",
        "json",
        "--skip-check",
        ",".join(sorted(CHECKOV_SKIPS)),
        *args,
    )
    assert result.stdout.strip(), result.stderr
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for each in reports
        for check in each["results"]["failed_checks"]
    ]
    assert not failed, "checkov failures:\n" + "\n".join(failed)
    return {each["check_type"]: each["summary"]["passed"] for each in reports}


def test_checkov_passes_the_rendered_manifests(rendered_file):
    passed = _checkov("--framework", "kubernetes", "-d", str(rendered_file.parent))
    assert passed["kubernetes"] > 100


def test_checkov_passes_the_dockerfiles():
    files = [arg for service in SERVICES for arg in ("-f", str(ROOT / service / "Dockerfile"))]
    passed = _checkov("--framework", "dockerfile", *files)
    assert passed["dockerfile"] > 50


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint_passes_the_dockerfile(service):
    result = run(tool("hadolint"), "--failure-threshold", "warning", f"{service}/Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_passes_every_yaml_file():
    result = run(tool("yamllint"), "--strict", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_passes_the_workflows():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert workflows, "no GitHub workflow in .github/workflows"
    result = run(tool("actionlint"), *(str(path) for path in workflows))
    assert result.returncode == 0, result.stdout + result.stderr
