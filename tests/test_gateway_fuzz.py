"""schemathesis against the running gateway and its own OpenAPI document (issue 12, part 5).

The gateway publishes the document at /openapi.json; schemathesis reads it, generates
requests from it (valid ones and, in its coverage phase, invalid ones: wrong types,
out-of-range numbers, odd strings, missing parameters, undeclared methods) and checks
every answer: no 5xx, and every status, content type, header and body as the document
says. It runs with a real token (Bearer) and a real user's email and password (basic, for
/login), and /download is pointed at a real converted MP3 so that its Range handling is
fuzzed, not only its 404. `positive_data_acceptance` is left out: a well-formed multipart
file of random bytes is a 415 by its content, which no schema can express.

The examples per operation are bounded (FUZZ_EXAMPLES, default 100): about 800 requests
in 15 to 30 s on the dev stack. Half the generated uploads carry a real tiny WAV
(fuzz_hooks.py), so taken uploads are checked too. The whole report is kept in
var/log/fuzz-gateway.txt; a failure shows it, with the seed and a curl command that
reproduces each failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import GATEWAY_URL, ROOT, login

from mp3testing import wait_until
from mp3testing.media import make_clip

pytestmark = pytest.mark.stack

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
#: Checks that compare answers with the document, and the server-error one.
CHECKS = "all"
SKIPPED_CHECKS = "positive_data_acceptance"

CONFIG = """
[auth.openapi.bearerAuth]
bearer = "${FUZZ_TOKEN}"

[auth.openapi.basicAuth]
username = "${FUZZ_EMAIL}"
password = "${FUZZ_PASSWORD}"

[[operations]]
include-name = "GET /download"
parameters = { fid = "${FUZZ_DONE_FID}" }

# The job's own routes on the real done job (a cancel or a retry of it is a 409), but not
# DELETE, which would take the MP3 the other operations are fuzzed against.
[[operations]]
include-path-regex = "^/jobs/"
exclude-method = "DELETE"
parameters = { fid = "${FUZZ_DONE_FID}" }
"""


@pytest.fixture(scope="module")
def done_job(tmp_path_factory):
    """A user, their token, and a job of theirs converted to an MP3."""
    from mp3testing.users import new_user

    email, password = new_user("fuzz")
    token = login(GATEWAY_URL, email, password)
    folder = tmp_path_factory.mktemp("fuzz")
    clip = make_clip(folder / "clip.mp4", 1, size="32x24", rate=5, args=["-c:v", "mpeg4"])
    with clip.open("rb") as file:
        answer = requests.post(
            f"{GATEWAY_URL}/upload",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("clip.mp4", file)},
            timeout=30,
        )
    assert answer.status_code == 202, answer.text
    fid = answer.json()["fid"]

    def state() -> str:
        return requests.get(
            f"{GATEWAY_URL}/status",
            params={"fid": fid},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()["state"]

    assert wait_until(lambda: state() in ("done", "failed"), timeout=90, interval=0.5)
    assert state() == "done"
    wav = make_clip(folder / "tone.wav", 0.2, video=False)
    return {"email": email, "password": password, "token": token, "fid": fid, "wav": wav}


def test_every_answer_fits_the_document_and_none_is_a_server_error(done_job, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "FUZZ_TOKEN": done_job["token"],
        "FUZZ_EMAIL": done_job["email"],
        "FUZZ_PASSWORD": done_job["password"],
        "FUZZ_DONE_FID": done_job["fid"],
        "FUZZ_MEDIA": str(done_job["wav"]),
        "SCHEMATHESIS_HOOKS": "fuzz_hooks",
        "PYTHONPATH": str(ROOT / "tests"),
        "NO_COLOR": "1",
    }

    def schemathesis(*args: str) -> tuple[int, str, str]:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config)]
            + ["--no-color", "run", f"{GATEWAY_URL}/openapi.json"]
            + ["--checks", CHECKS, "--exclude-checks", SKIPPED_CHECKS]
            + ["--request-timeout", "30", "--suppress-health-check", "too_slow,filter_too_much"]
            + list(args),
            capture_output=True,
            text=True,
            cwd=tmp_path,  # its cache (.schemathesis/) goes there
            env=env,
            timeout=600,
        )
        report = done.stdout + done.stderr
        summary = re.search(r"Test cases:\s*\n\s*(.*)", report)
        return done.returncode, summary.group(1) if summary else "", report

    # Every login counts against the login limits of 127.0.0.1 (60 a minute), which the
    # other system tests share: /login gets a few generated cases of its own, not the
    # coverage phase's forty-odd.
    runs = [
        schemathesis("--max-examples", str(EXAMPLES), "--exclude-operation-id", "login"),
        schemathesis(
            "--max-examples", "5", "--include-operation-id", "login", "--phases", "fuzzing"
        ),
    ]
    (ROOT / "var" / "log" / "fuzz-gateway.txt").write_text("\n".join(r[2] for r in runs))
    for returncode, summary, report in runs:
        assert returncode == 0, report[-20000:]
        assert "passed" in summary and "fail" not in summary, report[-5000:]
