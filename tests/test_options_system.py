"""Issue 13 on the running stack, as a user drives it: options, tags and cover, progress,
cancel, retry, delete. Each file is made with ffmpeg, sent through the gateway, and the
result read back with mutagen and ffmpeg's own loudness meter (`ebur128`).
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
import requests
from mutagen.id3 import ID3
from mutagen.mp3 import MP3
from mutagen.oggopus import OggOpus
from PIL import Image
from pymongo import MongoClient
from reference_flow import GATEWAY, mails_to, wait_for_mails

from mp3testing import wait_until
from mp3testing.media import ffmpeg, loudness, make_clip

pytestmark = pytest.mark.stack  # drives the stack make run started

BASE = f"http://{GATEWAY}"
MONGODB_URI = "mongodb://127.0.0.1:27017"


@pytest.fixture
def user(signed_in):
    """A fresh user's (address, session with its Bearer token)."""
    return signed_in("options")


def send(session: requests.Session, path: Path, **options: str) -> dict:
    """Upload `path` with `options` as form fields (before the file, as a form puts them)."""
    with path.open("rb") as body:
        response = session.post(
            f"{BASE}/upload",
            data=options,
            files={"file": (path.name, body)},
            timeout=120,
        )
    assert response.status_code == 202, response.text
    return response.json()


def status(session: requests.Session, fid: str) -> dict:
    response = session.get(f"{BASE}/jobs/{fid}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(session: requests.Session, fid: str, *states: str, timeout: float = 120.0) -> dict:
    found = wait_until(
        lambda: (job := status(session, fid))["state"] in states and job, timeout, interval=0.2
    )
    assert found, f"job {fid} never reached {states}: {status(session, fid)}"
    return found


def fetch(session: requests.Session, fid: str, target: Path) -> requests.Response:
    response = session.get(f"{BASE}/download", params={"fid": fid}, timeout=60)
    assert response.status_code == 200, response.text
    target.write_bytes(response.content)
    return response


def long_wav(path: Path, minutes: float) -> Path:
    """A long, small file (8 kHz mono PCM): slow enough to convert to watch it happen."""
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=300:sample_rate=8000:duration={minutes * 60}",
        "-c:a",
        "pcm_s16le",
        str(path),
    )
    return path


# --- options ---------------------------------------------------------------------------------


def test_opus_trimmed_and_normalized_is_the_right_length_and_loudness(user, tmp_path):
    """The issue's 'done when': format=opus quality=96k start end normalize=-16."""
    _, session = user
    quiet = make_clip(
        tmp_path / "quiet.mp4",
        20,
        size="160x120",
        tone="sine=frequency=440:sample_rate=48000",
        args=["-af", "volume=-30dB", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    )
    job = send(
        session, quiet, format="opus", quality="96k", start="0:02", end="12.5", normalize="-16"
    )
    assert job["options"] == {
        "format": "opus",
        "quality": "96k",
        "start": 2.0,
        "end": 12.5,
        "normalize": -16.0,
        "track": None,
        "channels": None,
    }
    done = wait_for(session, job["fid"], "done", "failed")
    assert done["state"] == "done", done
    assert done["copied"] is False
    response = fetch(session, job["fid"], tmp_path / "out.opus")
    assert response.headers["Content-Type"].startswith("audio/ogg")
    assert re.search(r'filename="?quiet\.opus"?(;|$)', response.headers["Content-Disposition"])
    opus = OggOpus(tmp_path / "out.opus")
    assert opus.info.length == pytest.approx(10.5, abs=0.1)
    assert loudness(tmp_path / "out.opus") == pytest.approx(-16, abs=1.0)


def test_a_default_upload_is_a_tagged_mp3_with_a_cover_from_the_video(user, tmp_path):
    _, session = user
    clip = make_clip(
        tmp_path / "Beach day.mp4",
        10,
        size="1280x720",
        args=[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-metadata",
            "artist=Ann Example",
            "-metadata",
            "comment=filmed on a phone",
        ],
    )
    job = send(session, clip)
    done = wait_for(session, job["fid"], "done", "failed")
    assert done["state"] == "done" and done["cover"] is True, done
    fetch(session, job["fid"], tmp_path / "out.mp3")
    tags = ID3(tmp_path / "out.mp3")
    assert tags.version[:2] == (2, 3)  # what every player reads, Windows' included
    assert str(tags["TIT2"]) == "Beach day"  # no title in the file: its name
    assert str(tags["TPE1"]) == "Ann Example"
    assert "filmed on a phone" in [str(frame) for frame in tags.getall("COMM")]
    [picture] = tags.getall("APIC")
    assert picture.mime == "image/jpeg"
    image = Image.open(io.BytesIO(picture.data))
    assert max(image.size) <= 600 and image.size[0] > image.size[1]  # the video's shape
    assert MP3(tmp_path / "out.mp3").info.length == pytest.approx(10, abs=0.2)


def test_mp3_audio_asked_as_mp3_is_copied_not_encoded_again(user, tmp_path):
    _, session = user
    source = make_clip(tmp_path / "talk.mp3", 8, video=False, args=["-c:a", "libmp3lame"])
    job = send(session, source, format="mp3")
    done = wait_for(session, job["fid"], "done", "failed")
    assert done["state"] == "done" and done["copied"] is True, done
    assert done["cover"] is False  # audio alone: no invented cover


def test_a_bad_option_is_refused_before_anything_is_stored(user, tmp_path):
    _, session = user
    clip = make_clip(tmp_path / "clip.mp4", 1)
    with clip.open("rb") as body:
        response = session.post(
            f"{BASE}/upload", data={"format": "ogg"}, files={"file": body}, timeout=30
        )
    assert response.status_code == 400
    assert response.json()["option"] == "format"
    assert "mp3" in response.json()["allowed"]
    assert session.get(f"{BASE}/jobs", timeout=10).json()["total"] == 0


def test_formats_lists_what_a_client_may_choose():
    catalog = requests.get(f"{BASE}/formats", timeout=10).json()
    names = [entry["name"] for entry in catalog["formats"]]
    assert names == ["mp3", "m4a", "opus", "flac", "wav"]
    assert catalog["default_format"] == "mp3"


# --- progress, cancel, retry, delete ------------------------------------------------------


def test_status_shows_progress_while_converting_then_cancel_and_retry(user, tmp_path):
    address, session = user
    source = long_wav(tmp_path / "lecture.wav", 40)
    job = send(session, source, normalize="-16")
    fid = job["fid"]

    def converting_with_progress():
        now = status(session, fid)
        return now["state"] == "converting" and (now["progress"] or 0) > 0 and now

    seen = wait_until(converting_with_progress, 120, interval=0.2)
    assert seen, status(session, fid)
    assert 0 < seen["progress"] < 100 and seen["eta_seconds"] is not None
    listed = session.get(f"{BASE}/jobs", timeout=10).json()["jobs"][0]
    assert listed["fid"] == fid and "progress" in listed

    cancelled = session.post(f"{BASE}/jobs/{fid}/cancel", timeout=10)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["expires_at"]
    # The converter lets go of it: no output stored, and (the owner did it) no mail.
    database = MongoClient(MONGODB_URI, tz_aware=True)["mp3converter"]
    time.sleep(3)
    assert database["mp3s.files"].count_documents({"metadata.job_id": job_id(fid)}) == 0
    assert status(session, fid)["state"] == "cancelled"
    assert mails_to(address) == []

    retried = session.post(f"{BASE}/jobs/{fid}/retry", timeout=10)
    assert retried.status_code in (200, 202), retried.text
    assert retried.json()["state"] == "queued"
    done = wait_for(session, fid, "done", "failed", timeout=300)
    assert done["state"] == "done", done
    [mail] = wait_for_mails(address)
    assert "expire" in mail.get_content().lower() or "deleted on" in mail.get_content()


def job_id(fid: str):
    from bson import ObjectId

    return ObjectId(fid)


def test_delete_removes_the_files_and_the_record_and_only_the_owners(user, signed_in, tmp_path):
    _, session = user
    _, other = signed_in("other")
    job = send(session, make_clip(tmp_path / "clip.mp4", 2))
    fid = job["fid"]
    done = wait_for(session, fid, "done", "failed")

    assert other.delete(f"{BASE}/jobs/{fid}", timeout=10).status_code == 404
    assert status(session, fid)["state"] == "done"  # nothing deleted
    assert session.get(f"{BASE}/download", params={"fid": fid}, timeout=10).status_code == 200

    assert session.delete(f"{BASE}/jobs/{fid}", timeout=10).status_code in (200, 204)
    assert session.get(f"{BASE}/jobs/{fid}", timeout=10).status_code == 404
    database = MongoClient(MONGODB_URI, tz_aware=True)["mp3converter"]
    assert database["mp3s.files"].count_documents({"_id": job_id(done["mp3_fid"])}) == 0
    assert database["videos.files"].count_documents({"_id": job_id(fid)}) == 0
    assert database["jobs"].count_documents({"_id": job_id(fid)}) == 0
