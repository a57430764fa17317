"""What the offline deployment checks share: the tools, and the kustomization rendered.

No cluster and no Docker engine run here, so the deployment is checked as files: the
kustomization is rendered with kubectl's own kustomize, and the result is what the
validators and tests/test_deploy_consistency.py read. The tools live in .venv-deploy
(`make deploy-tools`); this test venv has no YAML parser, so YAML is read by that venv's
Python (PyYAML comes with checkov and yamllint) and handed over as JSON.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_BIN = ROOT / ".venv-deploy" / "bin"
SERVICES = ("auth", "gateway", "converter", "notification")
# What the kustomization reads: copied into a scratch folder, so the rendering gets test
# secrets and never a developer's real k8s-secrets.env.
KUSTOMIZATION_INPUTS = (
    "kustomization.yaml",
    "deploy",
    "auth/init.sql",
    "auth/manifests",
    "gateway/manifests",
    "converter/manifests",
    "notification/manifests",
    "rabbit/manifests",
)
_TO_JSON = "import json, sys, yaml; json.dump(list(yaml.safe_load_all(sys.stdin)), sys.stdout)"


def tool(name: str) -> str:
    path = DEPLOY_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make deploy-tools` (it installs the checkers)")
    return str(path)


def run(*args: str, cwd: Path = ROOT, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=cwd, input=input, capture_output=True, text=True, timeout=600, check=False
    )


def load_yaml(text: str) -> list:
    result = run(tool("python"), "-c", _TO_JSON, input=text)
    assert result.returncode == 0, result.stderr
    return [doc for doc in json.loads(result.stdout) if doc]


def _scratch_copy() -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="mp3deploy-"))
    atexit.register(shutil.rmtree, scratch, True)
    for name in KUSTOMIZATION_INPUTS:
        source, target = ROOT / name, scratch / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    return scratch


def kustomize(directory: Path) -> str:
    """`kubectl kustomize DIRECTORY`: the rendered YAML."""
    result = run(tool("kubectl"), "kustomize", str(directory))
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return result.stdout


@cache
def render_dir() -> Path:
    """A scratch copy of the kustomization's inputs, with secrets made by k8s-secrets.sh."""
    scratch = _scratch_copy()
    made = run(str(ROOT / "deploy" / "k8s-secrets.sh"), "k8s-secrets.env", cwd=scratch)
    assert made.returncode == 0, made.stderr
    return scratch


@cache
def rendered_text() -> str:
    return kustomize(render_dir())


def rendered_objects_with(secrets: dict[str, str]) -> list[dict]:
    """The cluster's objects with the given k8s-secrets.env values (every key it needs)."""
    scratch = _scratch_copy()
    lines = [f"{name}={value}" for name, value in secrets.items()]
    (scratch / "k8s-secrets.env").write_text("\n".join(lines) + "\n")
    # The TLS certificate (and nothing else: every key is given) as `make k8s-secrets` makes it.
    made = run(str(ROOT / "deploy" / "k8s-secrets.sh"), "k8s-secrets.env", cwd=scratch)
    assert made.returncode == 0, made.stderr
    return load_yaml(kustomize(scratch))


@cache
def _rendered_json() -> str:
    return json.dumps(load_yaml(rendered_text()))


def rendered_objects() -> list[dict]:
    """The cluster's objects as `kubectl apply -k .` would send them (a fresh copy)."""
    return json.loads(_rendered_json())


def by_kind_and_name(objects: list[dict]) -> dict[str, dict[str, dict]]:
    """{kind: {name: object}}: how the deployment tests look objects up."""
    index: dict[str, dict[str, dict]] = {}
    for obj in objects:
        index.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    return index
