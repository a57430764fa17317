"""The gateway as `make run` runs it (gunicorn on 8080, the real auth), with real curl.

What the gateway answers to each request (refusals, ranges, other users' fids, outages) is
checked exactly by gateway/tests, with a database and a queue of their own; here, the
README's commands through gunicorn, until the MP3 is downloaded.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import GATEWAY_URL
from reference_flow import mp3_duration

from mp3testing import wait_until
from mp3testing.media import make_clip

pytestmark = pytest.mark.stack  # drives the stack make run started

GATEWAY = urlsplit(GATEWAY_URL).netloc
# The reference README's host, mapped to the local gateway without editing /etc/hosts.
CONNECT_TO = ["--connect-to", f"mp3converter.com:80:{GATEWAY}"]
SITE = "http://mp3converter.com"


def curl_in(folder: Path, *args: str) -> tuple[int, str]:
    """Real curl, run in `folder` (so -F file=@name works as in the README): (status, body)."""
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args, *CONNECT_TO],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def bearer(token: str) -> list[str]:
    return ["-H", f"Authorization: Bearer {token}"]


def test_the_reference_curl_flow_login_upload_status_download(tmp_path):
    make_clip(tmp_path / "video.mp4", 2, size="64x48", rate=10, args=["-c:v", "mpeg4"])
    # The README's commands as written, with the seeded development user.
    status, token = curl_in(
        tmp_path, "-X", "POST", "-u", "assylbek@email.com:Admin123", f"{SITE}/login"
    )
    assert status == 200 and token.count(".") == 2
    status, body = curl_in(
        tmp_path, "-X", "POST", *bearer(token), "-F", "file=@video.mp4", f"{SITE}/upload"
    )
    assert status == 202, body
    job = json.loads(body)
    assert job["state"] == "queued" and job["filename"] == "video.mp4"

    def state() -> str:
        status, body = curl_in(tmp_path, *bearer(token), f"{SITE}/status?fid={job['fid']}")
        assert status == 200, body
        return json.loads(body)["state"]

    assert wait_until(lambda: state() in ("done", "failed"), timeout=90, interval=0.5)
    assert state() == "done"
    status, _ = curl_in(
        tmp_path, *bearer(token), f"{SITE}/download?fid={job['fid']}", "-o", "output.mp3"
    )
    assert status == 200
    assert abs(mp3_duration(tmp_path / "output.mp3") - 2) < 0.2
