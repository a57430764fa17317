"""The whole flow, from outside, as a user follows the reference README.

The README's three curl commands run as written, by bash and the real curl, with
`mp3converter.com` mapped to the local gateway by curl's `--connect-to` (no /etc/hosts
edit): log in → upload a generated video → wait for the mail in the SMTP sink → take the
file id from the mail → download → check the MP3. Media is made with ffmpeg's lavfi.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from reference_flow import (
    CONNECT_TO,
    download,
    fid_in,
    log_in,
    mails_to,
    make_video,
    mp3_duration,
    run_reference,
    upload,
    wait_for_mails,
)

pytestmark = pytest.mark.stack  # drives the stack make run started

# --- the tests -----------------------------------------------------------------------------


def test_login_upload_mail_download_gives_the_mp3(new_user, tmp_path):
    address, password = new_user("flow")
    token = log_in(address, password, tmp_path)
    video = make_video(tmp_path / "video.mp4", 30)

    uploaded = upload(token, video)

    [mail] = wait_for_mails(address)
    assert mail["Subject"] == "Your MP3 is ready: video.mp4"
    fid = fid_in(mail)
    assert fid == uploaded["fid"]
    assert download(token, fid, tmp_path / "output.mp3") == 200
    assert mp3_duration(tmp_path / "output.mp3") == pytest.approx(30, abs=0.5)

    # The command the mail gives works as written too, once the token is filled in.
    command = re.search(r"^ *(curl -H .*?\.mp3)$", mail.get_content(), re.M | re.S).group(1)
    command = command.replace("<JWT_TOKEN>", token) + f" -sS {CONNECT_TO}"
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True, timeout=60)
    assert (tmp_path / "video.mp3").read_bytes() == (tmp_path / "output.mp3").read_bytes()
    assert len(mails_to(address)) == 1


def test_a_silent_video_gets_a_could_not_convert_mail_and_status_failed(new_user, tmp_path):
    address, password = new_user("silent")
    token = log_in(address, password, tmp_path)
    video = make_video(tmp_path / "silent.mp4", 5, audio=False)

    upload(token, video)

    [mail] = wait_for_mails(address)
    assert mail["Subject"] == "We could not convert silent.mp4"
    assert "Reason:" in mail.get_content()
    fid = fid_in(mail)
    body, status = run_reference(
        'curl -H "Authorization: Bearer {token}" "http://mp3converter.com/status?fid={fid}"',
        tmp_path,
        token=token,
        fid=fid,
    )
    assert status == 200
    assert json.loads(body)["state"] == "failed"
    assert json.loads(body)["reason"]
    assert download(token, fid, tmp_path / "output.mp3") == 422
