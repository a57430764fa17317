"""mp3c, the command-line client, as a person runs it against the `make run` stack: the
installed command (`.venv/bin/mp3c`, `make run` installs it), a config of the test's own.

The issue's 'done when': `mp3c convert clip.mp4` leaves clip.mp3 beside it.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests
from conftest import GATEWAY_URL, ROOT

from mp3testing import wait_until
from mp3testing.media import decode, make_clip, raw_video

pytestmark = pytest.mark.stack  # drives the stack make run started

MP3C = str(ROOT / ".venv" / "bin" / "mp3c")


@pytest.fixture
def env(tmp_path):
    environ = {**os.environ, "MP3C_CONFIG": str(tmp_path / "config" / "mp3c.json")}
    environ.pop("MP3C_TOKEN", None)
    environ.pop("MP3C_URL", None)
    return environ


@pytest.fixture
def logged_in(env, new_user):
    address, password = new_user("mp3c")
    done = mp3c(env, "--url", GATEWAY_URL, "login", "--email", address, "--password-stdin",
                stdin=password + "\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return env


def mp3c(env, *args: str, cwd: Path | None = None, stdin: str | None = None):
    return subprocess.run(
        [MP3C, "--quiet", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_convert_leaves_the_mp3_beside_the_video_then_jobs_get_and_rm(logged_in, tmp_path):
    config = Path(logged_in["MP3C_CONFIG"])
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    clip = make_clip(tmp_path / "clip.mp4", 10, args=["-c:v", "mpeg4", "-c:a", "aac"])

    done = mp3c(logged_in, "convert", "clip.mp4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    mp3 = tmp_path / "clip.mp3"
    assert "Audio: mp3" in decode(mp3)
    fid = done.stdout.split("job ", 1)[1].split()[0]
    assert clip.exists()

    listed = mp3c(logged_in, "jobs")
    assert listed.returncode == 0 and fid in listed.stdout and "done" in listed.stdout

    fetched = mp3c(logged_in, "get", fid, "-o", str(tmp_path / "again"))
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "again" / "clip.mp3").read_bytes() == mp3.read_bytes()

    assert mp3c(logged_in, "rm", fid).returncode == 0
    gone = mp3c(logged_in, "get", fid, "-o", str(tmp_path))
    assert gone.returncode == 4 and "no file with that fid" in gone.stderr.lower()


def test_options_and_an_output_folder(logged_in, tmp_path):
    make_clip(tmp_path / "talk.mkv", 6, args=["-c:v", "mpeg4", "-c:a", "aac"])
    done = mp3c(logged_in, "convert", str(tmp_path / "talk.mkv"), "--format", "opus",
                "--quality", "96k", "--end", "3", "--channels", "mono",
                "-o", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = decode(tmp_path / "out" / "talk.opus")
    assert "Audio: opus" in info and "mono" in info


def test_errors_print_the_apis_message_with_their_exit_code(logged_in, env, tmp_path):
    make_clip(tmp_path / "clip.mp4", 1)
    refused = mp3c(logged_in, "convert", str(tmp_path / "clip.mp4"), "--format", "ogg")
    api = requests.post(
        f"{GATEWAY_URL}/uploads",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "10",
            "Upload-Metadata": "format b2dn",
            "Authorization": "Bearer " + json.loads(Path(env["MP3C_CONFIG"]).read_text())["token"],
        },
        timeout=10,
    )
    assert refused.returncode == 4
    assert refused.stderr.strip() == f"mp3c: {tmp_path / 'clip.mp4'}: " + api.json()["message"]

    nobody = {**env, "MP3C_CONFIG": str(tmp_path / "none.json")}
    assert mp3c(nobody, "jobs").returncode == 3
    expired = mp3c({**nobody, "MP3C_URL": GATEWAY_URL, "MP3C_TOKEN": "not.a.token"}, "jobs")
    assert expired.returncode == 3 and expired.stderr.startswith("mp3c: ")


def test_a_refused_file_does_not_stop_the_others(logged_in, tmp_path):
    make_clip(tmp_path / "a.mp4", 2, args=["-c:v", "mpeg4", "-c:a", "aac"])
    (tmp_path / "text.txt").write_text("not a video\n" * 100)
    make_clip(tmp_path / "b.mp4", 2, args=["-c:v", "mpeg4", "-c:a", "aac"])
    done = mp3c(logged_in, "convert", "a.mp4", "text.txt", "b.mp4", "-o", "out", cwd=tmp_path)
    assert done.returncode == 4, done.stderr
    assert done.stderr.startswith("mp3c: text.txt: The file is not a video")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp3", "b.mp3"]


def test_two_inputs_of_the_same_name_give_two_results(logged_in, tmp_path):
    for folder, seconds in (("a", 2), ("b", 4)):
        (tmp_path / folder).mkdir()
        make_clip(tmp_path / folder / "clip.mp4", seconds, args=["-c:v", "mpeg4", "-c:a", "aac"])
    done = mp3c(logged_in, "convert", "a/clip.mp4", "b/clip.mp4", "-o", "same", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "same").iterdir()) == ["clip (1).mp3", "clip.mp3"]
    assert "Duration: 00:00:02" in decode(tmp_path / "same" / "clip.mp3")
    assert "Duration: 00:00:04" in decode(tmp_path / "same" / "clip (1).mp3")


def test_an_interrupted_convert_resumes_the_same_upload(logged_in, tmp_path):
    video = raw_video(tmp_path / "long.mkv", 150)
    config = Path(logged_in["MP3C_CONFIG"])
    first = subprocess.Popen(
        [MP3C, "--quiet", "convert", str(video), "--no-wait"],
        env=logged_in,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pending = wait_until(lambda: json.loads(config.read_text()).get("uploads"), 30, 0.01)
    assert pending, "mp3c never recorded its upload"
    [url] = pending.values()
    token = json.loads(config.read_text())["token"]
    headers = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {token}"}

    def offset() -> int:
        return int(requests.head(url, headers=headers, timeout=10).headers["Upload-Offset"])

    assert wait_until(lambda: offset() > 0, 30, 0.01)
    first.send_signal(signal.SIGINT)  # Ctrl-C, mid-upload
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    time.sleep(0.5)  # the server saves what the cut PATCH brought
    kept = offset()
    assert 0 < kept < video.stat().st_size

    again = mp3c(logged_in, "convert", str(video))
    assert again.returncode == 0, again.stderr
    assert f"job {url.rsplit('/', 1)[1]}" in again.stdout  # the same upload, finished
    assert json.loads(config.read_text()).get("uploads") == {}
    assert "Audio: mp3" in decode(tmp_path / "long.mp3")
