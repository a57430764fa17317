"""Resumable uploads (tus 1.0) on the running stack, with a client that is not ours: tuspy.

The issue's 'done when': a 200 MB upload cut at about half way, mid-request, and resumed
from the offset the server reports gives the same bytes in GridFS (sha256) and a correct
MP3. Every PATCH is 8 MiB: below a proxy's per-request limit (gateway/manifests/ingress.yaml).
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from bson import ObjectId
from conftest import GATEWAY_URL, ROOT
from gateway_process import GatewayProcess
from pymongo import MongoClient
from reference_flow import FFMPEG
from tusclient.client import TusClient

from mp3testing import wait_until
from mp3testing.media import make_clip, raw_video, raw_video_seconds

pytestmark = pytest.mark.stack  # drives the stack make run started

MONGODB_URI = "mongodb://127.0.0.1:27017"
CHUNK = 8 * 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"


@pytest.fixture
def session(signed_in):
    return signed_in("tus")[1]


def sha256(path: Path, length: int) -> str:
    """The sha256 of the first `length` bytes of `path`."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while length and (block := source.read(min(1 << 20, length))):
            digest.update(block)
            length -= len(block)
    return digest.hexdigest()


def sha256_stored(database, fid: ObjectId) -> str:
    """The sha256 of what GridFS holds of an unfinished upload: its chunks in order, then
    the bytes of its partial last chunk (kept with the upload, tus_uploads)."""
    digest = hashlib.sha256()
    chunks = database["videos.chunks"].find({"files_id": fid}).sort("n", 1)
    for number, chunk in enumerate(chunks):
        assert chunk["n"] == number
        digest.update(chunk["data"])
    digest.update(database["tus_uploads"].find_one({"_id": fid})["tail"])
    return digest.hexdigest()


def server_offset(session: requests.Session, url: str) -> int:
    answer = session.head(url, headers=TUS, timeout=10)
    assert answer.status_code == 200, answer.status_code
    return int(answer.headers["Upload-Offset"])


def cut_patch(session: requests.Session, url: str, offset: int, body: bytes, send: int) -> None:
    """A PATCH that announces `body` but whose connection drops after `send` bytes of it."""
    parts = urlsplit(url)
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: {session.headers['Authorization']}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head + body[:send])
        sock.shutdown(socket.SHUT_WR)  # gone: the rest never comes
        sock.settimeout(30)
        while sock.recv(65536):
            pass


def test_a_200_mb_upload_cut_half_way_resumes_to_the_same_bytes_and_a_correct_mp3(
    session, tmp_path
):
    video = raw_video(tmp_path / "big.mkv", 200)
    size = video.stat().st_size
    assert size >= 200_000_000
    client = TusClient(f"{GATEWAY_URL}/uploads", headers=dict(session.headers))
    uploader = client.uploader(
        file_path=str(video), chunk_size=CHUNK, metadata={"filename": "big.mkv"}
    )
    first_half = (size // 2) // CHUNK * CHUNK  # about half, in whole PATCHes
    uploader.upload(stop_at=first_half)
    url = uploader.url
    assert server_offset(session, url) == first_half

    # The next PATCH is cut mid-body, mid-chunk: the server keeps what arrived.
    with video.open("rb") as source:
        source.seek(first_half)
        body = source.read(CHUNK)
    arrived = 5 * 1024 * 1024 + 12345
    cut_patch(session, url, first_half, body, arrived)
    assert wait_until(lambda: server_offset(session, url) == first_half + arrived, 30), (
        server_offset(session, url)
    )

    # A new client (as after a restart) asks the server where to go on, and finishes.
    resumed = TusClient(f"{GATEWAY_URL}/uploads", headers=dict(session.headers)).uploader(
        file_path=str(video), chunk_size=CHUNK, url=url
    )
    assert resumed.offset == first_half + arrived
    # All but the last byte: what GridFS holds then (its chunks, then the partial last
    # chunk kept with the upload) is every byte sent, in order. (Once converted, the video
    # is removed: its bytes can only be read before the last one arrives.)
    resumed.upload(stop_at=size - 1)
    fid = url.rsplit("/", 1)[1]
    database = MongoClient(MONGODB_URI)["mp3converter"]
    assert sha256_stored(database, ObjectId(fid)) == sha256(video, size - 1)

    resumed.upload()
    job = json.loads(resumed.request.response_content)
    assert resumed.request.response_headers["upload-job"] == fid == job["fid"]
    assert job["size"] == size and job["filename"] == "big.mkv"
    assert database["tus_uploads"].find_one({"_id": ObjectId(fid)})["state"] == "done"

    done = wait_until(
        lambda: (
            (job := session.get(f"{GATEWAY_URL}/status", params={"fid": fid}).json())["state"]
            in ("done", "failed")
            and job
        ),
        240,
        interval=0.5,
    )
    assert done and done["state"] == "done", done
    mp3 = tmp_path / "big.mp3"
    mp3.write_bytes(session.get(f"{GATEWAY_URL}/download", params={"fid": fid}).content)
    probe = subprocess.run(
        [FFMPEG, "-hide_banner", "-i", str(mp3), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0 and "Audio: mp3" in probe.stderr, probe.stderr
    assert done["duration_seconds"] == pytest.approx(raw_video_seconds(200), abs=0.2)


def test_options_travel_in_the_metadata_and_a_bad_one_is_refused_before_any_byte(session, tmp_path):
    clip = make_clip(tmp_path / "talk.mp4", 4, args=["-c:v", "mpeg4", "-c:a", "aac"])
    client = TusClient(f"{GATEWAY_URL}/uploads", headers=dict(session.headers))
    uploader = client.uploader(
        file_path=str(clip),
        chunk_size=CHUNK,
        metadata={"filename": "talk.mp4", "format": "opus", "quality": "96k", "end": "2"},
    )
    uploader.upload()
    fid = uploader.url.rsplit("/", 1)[1]
    job = session.get(f"{GATEWAY_URL}/status", params={"fid": fid}, timeout=10).json()
    assert job["options"]["format"] == "opus" and job["options"]["end"] == 2.0

    refused = session.post(
        f"{GATEWAY_URL}/uploads",
        headers={**TUS, "Upload-Length": "1000", "Upload-Metadata": "format b2dn"},  # ogg
        timeout=10,
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_option" and refused.json()["option"] == "format"


def test_another_users_upload_is_not_found_and_termination_leaves_nothing(
    session, new_user, tmp_path
):
    clip = make_clip(tmp_path / "clip.mp4", 2, args=["-c:v", "mpeg4", "-c:a", "aac"])
    made = session.post(
        f"{GATEWAY_URL}/uploads",
        headers={**TUS, "Upload-Length": str(clip.stat().st_size + CHUNK)},
        timeout=10,
    )
    assert made.status_code == 201
    url = GATEWAY_URL + made.headers["Location"]
    body = clip.read_bytes()
    sent = session.patch(
        url,
        headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        data=body,
        timeout=30,
    )
    assert sent.status_code == 204 and sent.headers["Upload-Offset"] == str(len(body))

    address, password = new_user("intruder")
    other = requests.Session()
    token = other.post(f"{GATEWAY_URL}/login", auth=(address, password), timeout=10).text
    other.headers["Authorization"] = f"Bearer {token}"
    assert other.head(url, headers=TUS, timeout=10).status_code == 404
    assert other.delete(url, headers=TUS, timeout=10).status_code == 404

    assert session.delete(url, headers=TUS, timeout=10).status_code == 204
    fid = ObjectId(url.rsplit("/", 1)[1])
    database = MongoClient(MONGODB_URI)["mp3converter"]
    assert database["tus_uploads"].count_documents({"_id": fid}) == 0
    assert database["videos.chunks"].count_documents({"files_id": fid}) == 0
    assert session.head(url, headers=TUS, timeout=10).status_code == 404


def test_an_abandoned_upload_expires_and_the_sweep_leaves_nothing(session, tmp_path):
    """A gateway of the test's own whose uploads expire after 2 s, swept every second."""
    clip = make_clip(tmp_path / "clip.mp4", 2, args=["-c:v", "mpeg4", "-c:a", "aac"])
    body = clip.read_bytes()
    settings = {"TUS_UPLOAD_EXPIRY_SECONDS": "2", "TUS_EXPIRY_SWEEP_SECONDS": "1"}
    with GatewayProcess(tmp_path / "gateway.log", **settings) as gateway:
        made = session.post(
            f"{gateway.url}/uploads",
            headers={**TUS, "Upload-Length": str(len(body) + CHUNK)},
            timeout=10,
        )
        assert made.status_code == 201 and made.headers["Upload-Expires"].endswith(" GMT")
        url = gateway.url + made.headers["Location"]
        sent = session.patch(
            url,
            headers={**TUS, "Upload-Offset": "0", "Content-Type": OFFSET_STREAM},
            data=body + b"\0" * (CHUNK // 2),
            timeout=30,
        )
        assert sent.status_code == 204
        fid = ObjectId(url.rsplit("/", 1)[1])
        database = MongoClient(MONGODB_URI)["mp3converter"]
        assert database["videos.chunks"].count_documents({"files_id": fid}) > 0

        def swept() -> bool:  # an expired upload is a 404 at once; the sweep removes it
            return (
                database["tus_uploads"].count_documents({"_id": fid}) == 0
                and database["videos.chunks"].count_documents({"files_id": fid}) == 0
            )

        assert wait_until(swept, 30, interval=0.5)
        assert session.head(url, headers=TUS, timeout=10).status_code == 404


def test_the_readmes_curl_loop_uploads_and_resumes(new_user, tmp_path):
    """The README's curl commands, as written (a fresh user's credentials for the dev
    user's), then the loop again after the upload is cut (a piece's connection dropped
    half way): it goes on from the server's offset."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("**With curl, or any tus client**", 1)[1]
    script = section.split("```bash\n", 1)[1].split("```", 1)[0]
    address, password = new_user("readme")
    assert "assylbek@email.com:Admin123" in script
    script = script.replace("assylbek@email.com:Admin123", f"{address}:{password}")
    create, loop = script.split("while :;", 1)
    loop = "while :;" + loop
    raw_video(tmp_path / "video.mkv", 20).rename(tmp_path / "video.mp4")  # 3 pieces: 8 MiB
    size = (tmp_path / "video.mp4").stat().st_size
    # First the creation and one piece; then a piece cut half way, as a drop does.
    first_piece = loop.replace("done ", "break; done ", 1)
    done = subprocess.run(
        ["bash", "-euc", create + first_piece + '\necho "$URL" > url\n'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    url = (tmp_path / "url").read_text().strip()
    token = requests.post(f"{GATEWAY_URL}/login", auth=(address, password), timeout=10).text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    assert server_offset(session, url) == CHUNK
    with (tmp_path / "video.mp4").open("rb") as source:
        source.seek(CHUNK)
        piece = source.read(CHUNK)
    cut_patch(session, url, CHUNK, piece, len(piece) // 2)
    assert wait_until(lambda: server_offset(session, url) == CHUNK + len(piece) // 2, 30)

    resumed = subprocess.run(
        ["bash", "-euc", create.split("URL=", 1)[0] + f"URL={url}\n" + loop],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    job = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert job["fid"] == url.rsplit("/", 1)[1] and job["size"] == size
    assert job["options"]["format"] == "opus" and job["filename"] == "video.mp4"


def test_any_replica_takes_the_next_piece(session, tmp_path):
    """Two gateways (the stack's and one of the test's own) share nothing but MongoDB:
    pieces sent to each in turn, cut anywhere, make one file and one job."""
    video = raw_video(tmp_path / "two.mkv", 20)
    data = video.read_bytes()
    cuts = [0, 1_000_000, 3 * CHUNK // 2, 2 * CHUNK + 77, len(data)]
    with GatewayProcess(tmp_path / "gateway.log") as other:
        replicas = [GATEWAY_URL, other.url]
        made = session.post(
            f"{replicas[1]}/uploads",
            headers={**TUS, "Upload-Length": str(len(data))},
            timeout=10,
        )
        path = made.headers["Location"]
        for number, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
            replica = replicas[number % 2]
            assert server_offset(session, replicas[1 - number % 2] + path) == start
            answer = session.patch(
                replica + path,
                headers={**TUS, "Upload-Offset": str(start), "Content-Type": OFFSET_STREAM},
                data=data[start:end],
                timeout=30,
            )
            assert answer.status_code in (200, 204), answer.text
    job = answer.json()
    assert job["fid"] == path.rsplit("/", 1)[1] and job["size"] == len(data)
