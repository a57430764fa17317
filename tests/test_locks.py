"""Every image installs from its own hash-locked file, which agrees with constraints.txt.

`make lock` (dev/lock.sh) writes SERVICE/requirements.lock, every package pinned
transitively with the sha256 of its files, and copies the versions into constraints.txt's
generated block, which the dev venv installs with. These checks need no network: they
read the files. Re-resolving is `make lock`'s job.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("auth", "gateway", "converter", "notification")
MARKER = "# --- locked by `make lock`"
REQUIREMENT = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries(service: str) -> dict[str, tuple[str, list[str]]]:
    """{package: (version, [hashes])} of SERVICE/requirements.lock."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in (ROOT / service / "requirements.lock").read_text().splitlines():
        if match := REQUIREMENT.match(line):
            current = canonical(match.group(1))
            entries[current] = (match.group(2), [])
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            entries[current][1].append(digest)
    return entries


def constraints() -> tuple[dict[str, str], dict[str, str]]:
    """({package: version} of the hand-written part, {…} of the generated block)."""
    text = (ROOT / "constraints.txt").read_text()
    hand, _, generated = text.partition(MARKER)
    parse = lambda part: {  # noqa: E731
        canonical(m.group(1)): m.group(2) for m in map(REQUIREMENT.match, part.splitlines()) if m
    }
    return parse(hand), parse(generated)


def wanted(service: str) -> set[str]:
    """What the lock must cover: the service's requirements, mp3common's for its extras."""
    names = {
        canonical(line.split("#")[0].strip())
        for line in (ROOT / service / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    }
    project = tomllib.loads((ROOT / "common" / "pyproject.toml").read_text())["project"]
    names |= {canonical(n) for n in project["dependencies"]}
    extras = (ROOT / service / "common-extras.txt").read_text().strip().split(",")
    for extra in filter(None, (e.strip() for e in extras)):
        names |= {canonical(n) for n in project["optional-dependencies"][extra]}
    return names | {"setuptools"}


@pytest.mark.parametrize("service", SERVICES)
def test_every_package_is_pinned_with_hashes(service):
    entries = lock_entries(service)
    assert entries, f"{service}/requirements.lock is empty: run make lock"
    for name, (version, hashes) in entries.items():
        assert hashes, f"{service}: {name}=={version} has no hash"


@pytest.mark.parametrize("service", SERVICES)
def test_the_lock_covers_what_the_service_and_its_extras_ask_for(service):
    missing = wanted(service) - set(lock_entries(service))
    assert not missing, f"{service}/requirements.lock lacks {missing}: run make lock"


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_installs_only_from_its_lock_with_hashes(service):
    dockerfile = (ROOT / service / "Dockerfile").read_text().replace("\\\n", " ")
    installs = [
        " ".join(found.split()) for found in re.findall(r"pip install ([^\n&]*)", dockerfile)
    ]
    [from_lock] = [found for found in installs if f"-r {service}/requirements.lock" in found]
    assert "--require-hashes --no-deps" in from_lock
    for rest in installs:
        # Hashed as well (auth's build tools, taken out of the lock), or mp3common from the
        # tree: never anything from an index unchecked.
        hashed = "--require-hashes" in rest
        assert "--no-deps" in rest
        assert hashed or ("--no-build-isolation" in rest and "-r" not in rest.split())
    assert "constraints.txt" not in dockerfile
    # BuildKit sends only what <Dockerfile>.dockerignore admits: the lock must be among it.
    ignore = (ROOT / service / "Dockerfile.dockerignore").read_text().splitlines()
    assert f"!{service}/requirements.lock" in ignore


def test_the_locks_and_constraints_agree():
    """The dev venv (-c constraints.txt) gets every version the images install."""
    hand, generated = constraints()
    pinned = {**generated, **hand}
    locked: dict[str, str] = {}
    for service in SERVICES:
        for name, (version, _) in lock_entries(service).items():
            assert pinned.get(name) == version, (
                f"{service}: {name}=={version}, constraints.txt: {pinned.get(name)}"
            )
            assert locked.setdefault(name, version) == version, f"two locks disagree on {name}"
    stale = set(generated) - set(locked)
    assert not stale, f"constraints.txt's generated block pins {stale}, which no lock has"
    assert not set(generated) & set(hand), "a package pinned twice"


def test_make_lock_is_there():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lock:.*\n\tdev/lock\.sh", makefile, re.M)
    assert re.search(r"^uv==", (ROOT / "requirements-deploy.txt").read_text(), re.M)
