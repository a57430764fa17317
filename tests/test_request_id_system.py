"""One request id follows a job through every service's log, and the consumers' metrics
count it: an upload through the running stack's gateway with `X-Request-ID`, then
var/log/*.log (what `make run` writes) and the metrics ports dev/supervisord.conf gives
the consumers (notification 9103, converter-N 9110+N).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import pytest
import requests
from conftest import GATEWAY_URL, ROOT, curl, login

from mp3testing import wait_until
from mp3testing.media import make_clip

LOGS = ROOT / "var" / "log"
CONVERTERS = int(os.environ.get("CONVERTERS", "2"))
NOTIFICATION_METRICS = "http://127.0.0.1:9103/metrics"
CONVERTER_METRICS = [f"http://127.0.0.1:{9110 + n}/metrics" for n in range(1, CONVERTERS + 1)]

pytestmark = [
    pytest.mark.stack,  # drives the stack make run started
    pytest.mark.skipif(
        "[program:notification]" not in (ROOT / "dev" / "supervisord.conf").read_text(),
        reason="the whole flow needs the converter and notification in make run",
    ),
]


def log_sizes() -> dict[Path, int]:
    return {path: path.stat().st_size for path in LOGS.glob("*.log")}


def new_lines(since: dict[Path, int]) -> dict[str, list[str]]:
    """Each log's lines written after `since` (services log JSON lines, one per line)."""
    found = {}
    for path in LOGS.glob("*.log"):
        with path.open("rb") as log:
            log.seek(since.get(path, 0))
            found[path.stem] = log.read().decode(errors="replace").splitlines()
    return found


def metric(url: str, name: str) -> float:
    text = requests.get(url, timeout=5).text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{url} has no {name}"
    return float(match.group(1))


def converted(urls=CONVERTER_METRICS) -> float:
    return sum(metric(url, 'converter_jobs_finished_total{state="done"}') for url in urls)


@pytest.fixture
def video(tmp_path) -> Path:
    codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]
    return make_clip(tmp_path / "trace.mp4", 2, args=codecs)


def test_one_request_id_is_in_the_gateway_converter_and_notification_logs(new_user, video):
    rid = f"trace-{uuid.uuid4().hex[:12]}"
    token = login(GATEWAY_URL, *new_user("trace"))
    sizes = log_sizes()
    mails_before = metric(NOTIFICATION_METRICS, "notification_mails_sent_total")
    converted_before = converted()
    headers = ["-H", f"Authorization: Bearer {token}", "-H", f"X-Request-ID: {rid}"]
    answer = curl("-X", "POST", *headers, "-F", f"file=@{video}", f"{GATEWAY_URL}/upload")
    fid = json.loads(answer.stdout)["fid"]

    def mailed() -> dict | None:  # the notifier logs the sent mail last
        lines = new_lines(sizes)
        notified = any(rid in line and "mailed the owner" in line for line in lines["notification"])
        return lines if notified else None

    lines = wait_until(mailed, timeout=60, interval=0.2)
    assert lines, f"no mail logged for {fid} in 60 s"

    with_rid = {name for name, found in lines.items() if any(rid in line for line in found)}
    assert "gateway" in with_rid
    assert "notification" in with_rid
    assert any(name.startswith("converter-") for name in with_rid), with_rid
    # Every consumer line about this job carries it, from the first to the last.
    for name, found in lines.items():
        if name.startswith(("converter-", "notification")):
            for line in found:
                if fid in line:
                    assert json.loads(line)["request_id"] == rid, line
    # ... and the consumers' metrics counted the job and its mail.
    assert converted() >= converted_before + 1
    assert metric(NOTIFICATION_METRICS, "notification_mails_sent_total") >= mails_before + 1
