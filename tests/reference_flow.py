"""The reference README's flow, driven as a user drives it: the helpers its tests share.

The README's three curl commands run as written, by bash and the real curl, with
`mp3converter.com` mapped by curl's `--connect-to` to GATEWAY_ADDRESS (default the local
gateway, 127.0.0.1:8080; no /etc/hosts edit). Mail is read from the SMTP sink's maildir
(MAIL_DIR). Media is made with ffmpeg's lavfi. Used by the system tests and by the images'
test (tests/images), which run the same flow through the services' images.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
from pathlib import Path

import pika

from mp3testing import wait_until
from mp3testing.media import ffmpeg_exe, make_clip

FFMPEG = ffmpeg_exe()
ROOT = Path(__file__).resolve().parent.parent
MAIL_DIR = Path(os.environ.get("MAIL_DIR", ROOT / "var" / "mail"))
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
GATEWAY = os.environ.get("GATEWAY_ADDRESS", "127.0.0.1:8080")
CONNECT_TO = f"--connect-to mp3converter.com:80:{GATEWAY}"

# The reference README's usage section, word for word; <…> are its placeholders.
LOGIN = 'curl -X POST -u "{email}:{password}" http://mp3converter.com/login'
UPLOAD = (
    'curl -X POST -H "Authorization: Bearer {token}" \\\n'
    '  -F "file=@{video}" http://mp3converter.com/upload'
)
DOWNLOAD = (
    'curl -H "Authorization: Bearer {token}" \\\n'
    "  http://mp3converter.com/download?fid={fid} -o {output}"
)
FID = re.compile(r"^File id: ([0-9a-f]{24})$", re.M)
SHELL_SAFE = re.compile(r"^[A-Za-z0-9._@:=-]+$")


# --- driving the stack as a user -----------------------------------------------------------


def run_reference(command: str, cwd: Path, **values: str) -> tuple[str, int]:
    """Run a README command through bash, placeholders filled in; (stdout, HTTP status)."""
    for value in values.values():
        assert SHELL_SAFE.match(str(value)), f"{value!r} would need quoting in the command"
    text = command.format(**values)
    text += f" -sS -w '\\n%{{http_code}}' {CONNECT_TO}"
    done = subprocess.run(
        ["bash", "-c", text], cwd=cwd, capture_output=True, text=True, timeout=180, check=True
    )
    body, _, status = done.stdout.rpartition("\n")
    return body, int(status)


def log_in(email_address: str, password: str, cwd: Path) -> str:
    token, status = run_reference(LOGIN, cwd, email=email_address, password=password)
    assert status == 200, token
    return token


def upload(token: str, video: Path) -> dict:
    body, status = run_reference(UPLOAD, video.parent, token=token, video=video.name)
    assert status == 202, body
    return json.loads(body)


def download(token: str, fid: str, output: Path) -> int:
    body, status = run_reference(DOWNLOAD, output.parent, token=token, fid=fid, output=output.name)
    return status


def make_video(path: Path, seconds: float, *, audio: bool = True) -> Path:
    """The flow's upload: an H.264 test pattern as a phone makes it; with AAC or silent."""
    codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        codecs += ["-c:a", "aac", "-b:a", "96k"]
    return make_clip(path, seconds, size="320x240", rate=15, audio=audio, args=codecs)


def mp3_duration(path: Path) -> float:
    """The file's duration, after ffmpeg decoded all of it as MP3 without an error."""
    assert path.read_bytes()[:3] == b"ID3" or path.read_bytes()[0] == 0xFF, "not an MP3"
    probe = subprocess.run(
        [FFMPEG, "-hide_banner", "-v", "info", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert re.search(r"Input #0, mp3,", probe.stderr), probe.stderr
    assert "Audio: mp3" in probe.stderr
    hours, minutes, seconds = re.search(r"time=(\d+):(\d+):([\d.]+)", probe.stderr).groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


# --- the mail sink -------------------------------------------------------------------------

_parsed: dict[Path, email.message.EmailMessage] = {}


def mails_to(address: str) -> list[email.message.EmailMessage]:
    """What the local SMTP sink (a maildir) holds for `address`."""
    found = []
    for path in [*MAIL_DIR.glob("new/*"), *MAIL_DIR.glob("cur/*")]:
        if path not in _parsed:
            try:
                _parsed[path] = email.message_from_bytes(
                    path.read_bytes(), policy=email.policy.default
                )
            except FileNotFoundError:  # moved from new/ to cur/ by a reader meanwhile
                continue
        if _parsed[path]["To"] == address:
            found.append(_parsed[path])
    return found


def wait_for_mails(address: str, count: int = 1, timeout: float = 120.0) -> list:
    """Once the sink holds at least `count` mails to `address`: all of them."""

    def enough() -> tuple[list] | None:  # a tuple, so that "enough" of none is truthy too
        mails = mails_to(address)
        return (mails,) if len(mails) >= count else None

    if found := wait_until(enough, timeout):
        return found[0]
    raise AssertionError(f"{len(mails_to(address))} of {count} mails to {address} in {timeout} s")


def fid_in(mail) -> str:
    return FID.search(mail.get_content()).group(1)


def dead_lettered_fids() -> set[str]:
    """The job ids in the stack's dead-letter queues, peeked at and left there."""
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        fids = set()
        for queue in ("video.dlq", "mp3.dlq"):
            while True:
                method, _properties, body = channel.basic_get(queue)
                if method is None:
                    break
                try:
                    fids.add(json.loads(body).get("video_fid"))
                except (ValueError, AttributeError):
                    continue
        return fids  # closing the connection hands every message back, unacknowledged
    finally:
        connection.close()
