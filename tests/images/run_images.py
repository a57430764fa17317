"""The four images, run as the cluster runs them, and the reference flow through them.

`make image-test` runs this module after `make images`, with the dev stack's stores up and
its own services stopped (`dev/stack.sh stores`): the images take their ports and their
queues. Each container gets exactly what its rendered Deployment gives it (see
workloads.py): read-only root filesystem, uid 10001, no capabilities, its limits, and the
environment of its ConfigMaps and Secrets, with the dev stack's secret values in the
Secrets (rendered through the kustomization like `make k8s-secrets`' file). The in-cluster
host names (mysql, mongodb, rabbitmq, auth, gateway) lead to the dev stack's MariaDB,
RabbitMQ and MongoDB stand-in, and to the containers' published ports. The stores' own
images (MySQL 8.4, MongoDB 7, RabbitMQ 3.13) cannot be pulled here, so they are not run.

Only the mail settings differ from the manifests, as they do for every user: the manifest
names Gmail and a placeholder sender, which production refuses; here the sender is the dev
stack's and the server its SMTP sink (see MAIL_SETTINGS).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import requests
from image_fixtures import dev, hosts, rendered, stores, workloads  # noqa: F401 - fixtures, by name
from reference_flow import (
    CONNECT_TO,
    download,
    fid_in,
    log_in,
    mails_to,
    make_video,
    mp3_duration,
    upload,
    wait_for_mails,
)
from workloads import SERVICES, inspect, logs, podman, wait_healthy, write_env_file

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "var" / "image-test"
# In the order they start: each one's dependencies before it.
SEED = ("assylbek@email.com", "Admin123")
# A required setting of each service, removed to show that a manifest missing it fails.
REQUIRED = {
    "auth": "JWT_SECRET",
    "gateway": "AUTH_SVC_ADDRESS",
    "converter": "RABBITMQ_URL",
    "notification": "MONGODB_URI",
}


@pytest.fixture(scope="module")
def running(workloads, hosts, stores, tmp_path_factory):
    """Every image started, one after the other, each healthy before the next starts."""
    for port in (p for name in SERVICES for p in workloads[name].service_ports):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(
                    f"127.0.0.1:{port} is taken (the dev services?): the images publish their "
                    "ports there. Run `dev/stack.sh stores` first (`make image-test` does)."
                )
    OUTPUT.mkdir(parents=True, exist_ok=True)
    env_dir = tmp_path_factory.mktemp("env")
    try:
        for name in SERVICES:
            workload = workloads[name]
            env_file = write_env_file(env_dir / f"{name}.env", workload.env)
            podman("run", "--detach", *workload.run_args(env_file, hosts))
            wait_healthy(workload.container_name)
        yield workloads
    finally:
        for name in SERVICES:
            container = workloads[name].container_name
            (OUTPUT / f"{name}.log").write_text(logs(container))
            podman("rm", "--force", "--time", "20", container, check=False)


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_each_image_runs_locked_down_as_its_manifest_says(running, name):
    container = running[name].container_name
    config = inspect(container)
    assert config["HostConfig"]["ReadonlyRootfs"] is True
    assert podman("exec", container, "id", "-u").stdout.strip() == "10001"
    assert podman("exec", container, "id", "-g").stdout.strip() == "10001"
    wrote = podman("exec", container, "touch", "/app/written", check=False)
    assert wrote.returncode != 0 and "Read-only file system" in wrote.stderr
    capabilities = podman("exec", container, "grep", "CapEff", "/proc/self/status").stdout
    assert capabilities.split()[-1] == "0000000000000000"


@pytest.mark.parametrize("name", SERVICES)
def test_no_error_is_logged_at_start(running, name):
    """gunicorn's control socket on a read-only home, a missing module: nothing of the kind."""
    text = logs(running[name].container_name)
    assert text.strip(), f"{name} logged nothing"
    records = []
    for line in filter(None, text.splitlines()):
        try:  # every line is JSON: a plain one means a logger we did not set up
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"{name} logged a line that is not JSON: {line}") from None
        assert records[-1].get("level") not in ("ERROR", "CRITICAL"), line
    if name == "gateway":  # its gunicorn.conf.py was read: gevent, for slow clients
        assert any(r.get("message") == "Using worker: GatewayWorker" for r in records), text


@pytest.mark.parametrize("name", SERVICES)
def test_the_manifests_readiness_probe_passes(running, name):
    workload = running[name]
    probe = workload.container["readinessProbe"]
    if "httpGet" in probe:
        port = workload.port(probe["httpGet"]["port"])
        assert port in workload.service_ports, "probe a published port"
        answer = requests.get(f"http://127.0.0.1:{port}{probe['httpGet']['path']}", timeout=5)
        assert answer.status_code == 200, answer.text
    else:
        done = podman("exec", workload.container_name, *probe["exec"]["command"], check=False)
        assert done.returncode == 0, done.stderr


def test_the_reference_flow_through_the_images(running, tmp_path):
    """Log in, upload, get the mail, download: the README's curl calls, verbatim."""
    email_address, password = SEED
    # As deploy/README.md says an operator makes a user: auth's own CLI, in its container.
    made = podman(
        "exec",
        "--interactive",
        running["auth"].container_name,
        *("flask", "--app", "server", "create-user", email_address, "--password-stdin"),
        "--exist-ok",
        input=f"{password}\n",
    )
    assert made.returncode == 0
    token = log_in(email_address, password, tmp_path)
    video = make_video(tmp_path / "video.mp4", 10)
    already = len(mails_to(email_address))

    uploaded = upload(token, video)

    mails = wait_for_mails(email_address, already + 1)
    mail = next(m for m in mails if fid_in(m) == uploaded["fid"])
    assert mail["Subject"] == "Your MP3 is ready: video.mp4"
    assert download(token, uploaded["fid"], tmp_path / "output.mp3") == 200
    assert mp3_duration(tmp_path / "output.mp3") == pytest.approx(10, abs=0.5)
    assert CONNECT_TO.endswith("127.0.0.1:8080"), "the flow went to the gateway's image"


@pytest.mark.parametrize("name", SERVICES)
def test_a_setting_the_manifest_lacks_stops_the_image(workloads, hosts, name, tmp_path):
    """A manifest missing a required setting fails here, with the setting named."""
    workload = workloads[name]
    missing = REQUIRED[name]
    env = {k: v for k, v in workload.env.items() if k != missing}
    env_file = write_env_file(tmp_path / "env", env)
    args = workload.run_args(env_file, hosts)
    args[args.index("--name") + 1] += "-broken"
    args = [a for a in args if not a.startswith("--publish")]
    done = podman("run", "--rm", *args, timeout=90, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"{missing} is not set" in output
    assert "Traceback" not in output
