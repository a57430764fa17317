"""Each service imports in an environment built from its own requirements alone.

The dev venv holds every service's packages at once, so a service that imports something
its own requirements lack passes every other test and crashes only in its image: the
converter and the notification service once died at start on `No module named 'flask'`,
which mp3common.metrics imported for the Flask services. Here each service gets a venv
made the way its image installs it, from the repository root:

    pip install -c constraints.txt -r SERVICE/requirements.txt "./common[EXTRAS]"

(EXTRAS from SERVICE/common-extras.txt; common is installed as a copy, not editable), and
a `python -I` process, with the service folder as its import root and neither the
repository's common/ nor the dev venv importable, imports every module of the service,
its entry point and its gunicorn config (tests/service_env_probe.py).

The venvs are kept in var/service-envs/SERVICE and rebuilt only when what they are made
from changes (a hash of those files), so a second run takes seconds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.tools  # pip builds a venv per service

ROOT = Path(__file__).resolve().parent.parent
ENVS = ROOT / "var" / "service-envs"
PROBE = Path(__file__).resolve().parent / "service_env_probe.py"
CONSTRAINTS = ROOT / "constraints.txt"
COMMON = ROOT / "common"

#: What each image runs: its service package, its entry point (`server:app` for gunicorn,
#: `python consumer.py`), and for the Flask services gunicorn and its config.
TARGETS = {
    "auth": [
        "package:auth_service",
        "module:server",
        "module:gunicorn.app.wsgiapp",
        "file:gunicorn.conf.py",
    ],
    "gateway": [
        "package:gateway_service",
        "module:server",
        "module:gunicorn.app.wsgiapp",
        "file:gunicorn.conf.py",
    ],
    "converter": ["package:converter_service", "module:consumer"],
    "notification": ["package:notification_service", "module:consumer"],
}

#: Enough for server.py to build its app without a database, a broker or the dev stack's
#: settings: the development defaults, and no background outbox relay thread.
PROBE_ENVIRONMENT = {
    "APP_ENV": "development",
    "OUTBOX_RELAY_INTERVAL_SECONDS": "0",
    "LOG_LEVEL": "warning",
    "PATH": os.defpath,
    "LANG": "C.UTF-8",
}


class EnvironmentBuildError(Exception):
    """pip could not install a service's requirements; the message holds pip's output."""


def common_extras(service: str) -> str:
    return (ROOT / service / "common-extras.txt").read_text().strip()


def inputs_digest(service: str) -> str:
    """A hash of everything the service's venv is made from, and of the interpreter."""
    inputs = [
        ROOT / service / "requirements.txt",
        ROOT / service / "common-extras.txt",
        CONSTRAINTS,
        COMMON / "pyproject.toml",
        *sorted((COMMON / "mp3common").glob("*.py")),
    ]
    digest = hashlib.sha256(sys.version.encode())
    for path in inputs:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _run(command: list, **kwargs) -> None:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise EnvironmentBuildError(
            f"{' '.join(map(str, command))} failed ({done.returncode}):\n"
            f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )


def service_env(service: str) -> Path:
    """The service's venv, built unless one made from the same inputs is there."""
    env_dir = ENVS / service
    stamp = env_dir / "inputs.sha256"
    digest = inputs_digest(service)
    ENVS.mkdir(parents=True, exist_ok=True)
    with open(ENVS / f"{service}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building it too
        if stamp.is_file() and stamp.read_text() == digest:
            return env_dir
        shutil.rmtree(env_dir, ignore_errors=True)
        _run([sys.executable, "-m", "venv", env_dir])
        # pip builds a local project in place: each build gets its own copy of what the
        # image copies (pyproject.toml and mp3common/), so that parallel builds do not
        # share a build/ folder and common/ is left as it was.
        with tempfile.TemporaryDirectory(dir=ENVS, prefix=f".{service}-common-") as stage:
            common = Path(stage) / "common"
            shutil.copytree(
                COMMON / "mp3common",
                common / "mp3common",
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            shutil.copy2(COMMON / "pyproject.toml", common / "pyproject.toml")
            _run(
                [
                    env_dir / "bin" / "python",
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "-c",
                    CONSTRAINTS,
                    "-r",
                    ROOT / service / "requirements.txt",
                    f"{common}[{common_extras(service)}]",
                ],
                cwd=ROOT,
            )
        stamp.write_text(digest)
    return env_dir


def probe(env_dir: Path, service_dir: Path, targets: list[str], report: Path) -> dict:
    """Run service_env_probe.py with the venv's interpreter, isolated; its report."""
    done = subprocess.run(
        [env_dir / "bin" / "python", "-I", PROBE, service_dir, report, *targets],
        cwd=service_dir,
        env=PROBE_ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and report.is_file(), (
        f"the import probe itself failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    )
    return json.loads(report.read_text())


def describe_failures(service: str, failures: list[dict]) -> str:
    """One paragraph per import that failed: which module, which package, which line."""
    lines = [
        f"{service} does not import in an environment built from {service}/requirements.txt "
        f'and "./common[{common_extras(service)}]" alone (as its image is):'
    ]
    for failure in failures:
        if failure["missing"]:
            lines.append(
                f"- {failure['target']}: package {failure['missing']!r} is not installed "
                f"({failure['error']}: {failure['message']}), imported by "
                f"{failure['imported_by']}\n    {failure['line']}"
            )
        else:
            lines.append(
                f"- {failure['target']}: {failure['error']}: {failure['message']}\n"
                f"    {failure['line']}"
            )
    if any(failure["missing"] for failure in failures):  # not for a syntax error, say
        lines.append(
            f"Add the package to {service}/requirements.txt (and its pin to constraints.txt), "
            f"or the common extra that brings it to {service}/common-extras.txt, or stop "
            "importing it."
        )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def environments():
    """Every service's venv, built at the same time (a cold build is pip-bound)."""
    with ThreadPoolExecutor(max_workers=len(TARGETS)) as pool:
        yield {service: pool.submit(service_env, service) for service in TARGETS}


def ready(environments: dict[str, Future], service: str) -> Path:
    try:
        return environments[service].result()
    except EnvironmentBuildError as exc:
        pytest.fail(f"{service}'s environment could not be built: {exc}", pytrace=False)


@pytest.mark.parametrize("service", sorted(TARGETS))
def test_service_imports_with_its_own_requirements(environments, service, tmp_path):
    env_dir = ready(environments, service).resolve()
    service_dir = ROOT / service
    report = probe(env_dir, service_dir, TARGETS[service], tmp_path / "report.json")

    assert not report["failures"], describe_failures(service, report["failures"])

    # What was imported came from the service folder and the service's venv, nowhere else.
    assert Path(report["prefix"]).resolve() == env_dir
    assert report["mp3common"] and Path(report["mp3common"]).resolve().is_relative_to(env_dir)
    assert str(service_dir) in report["path"]
    outside = [ROOT / ".venv", COMMON]
    leaked = [
        f
        for f in report["path"] + report["files"]
        if any(Path(f).resolve().is_relative_to(root) for root in outside)
    ]
    assert not leaked, f"{service}'s probe could import from the dev venv or common/: {leaked}"


def test_a_missing_package_is_reported_by_module_and_package(environments, tmp_path):
    """The guard's message names the module that failed, the package and the import line,
    so that a red run says what to fix without reading a traceback."""
    env_dir = ready(environments, "notification")  # a consumer: no Flask installed
    service_dir = tmp_path / "fake"
    package = service_dir / "fake_service"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A service whose web module needs Flask."""\n')
    (package / "web.py").write_text("from flask import Flask\n\nFlask(__name__)\n")

    report = probe(env_dir, service_dir, ["package:fake_service"], tmp_path / "report.json")

    assert [(f["target"], f["missing"]) for f in report["failures"]] == [
        ("fake_service.web", "flask")
    ]
    message = describe_failures("notification", report["failures"])
    assert "- fake_service.web: package 'flask' is not installed" in message
    assert "imported by fake_service.web" in message
    assert f"{package / 'web.py'}:1: from flask import Flask" in message
    assert "notification/requirements.txt" in message
