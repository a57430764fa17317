"""GET /status, /jobs and /download: only the owner sees a job; the MP3 streams with Range."""

import os
import re

import pytest
from bson import ObjectId
from conftest import upload

MiB = 1024 * 1024


@pytest.fixture
def queued(client, alice, media):
    """A job of alice's, just uploaded: its fid."""
    response = upload(client, alice, [("file", "holiday clip.mov", media["mp4"])])
    assert response.status_code == 202
    return response.get_json()["fid"]


@pytest.fixture
def converted(queued, stored, media):
    """alice's job, converted as the converter would: (fid, mp3 fid, mp3 bytes)."""
    mp3_fid = stored.finish_job(queued, media["mp3"])
    return queued, str(mp3_fid), media["mp3"]


@pytest.mark.stack
def test_status_of_a_queued_job(client, alice, queued, media):
    body = client.get(f"/status?fid={queued}", headers=alice.headers).get_json()
    assert body["fid"] == queued
    assert body["state"] == "queued"
    assert body["filename"] == "holiday clip.mov"
    assert body["size"] == len(media["mp4"])
    assert "mp3_fid" not in body


@pytest.mark.stack
def test_status_of_a_done_job_names_the_mp3(client, alice, converted):
    fid, mp3_fid, mp3 = converted
    body = client.get(f"/status?fid={fid}", headers=alice.headers).get_json()
    assert body["state"] == "done"
    assert body["mp3_fid"] == mp3_fid
    assert body["mp3_size"] == len(mp3)
    assert body["download_url"] == f"/download?fid={fid}"


@pytest.mark.stack
def test_status_of_a_failed_job_says_why(client, alice, queued, stored):
    stored.jobs.fail(ObjectId(queued), "the video has no audio track")
    body = client.get(f"/status?fid={queued}", headers=alice.headers).get_json()
    assert body["state"] == "failed"
    assert body["reason"] == "the video has no audio track"


@pytest.mark.parametrize("path", ["/status", "/download"])
@pytest.mark.parametrize(
    "fid",
    ["others", "unknown", "malformed", "mp3-of-others", "injection"],
)
@pytest.mark.stack
def test_anything_but_your_own_fid_is_the_same_404(client, alice, bob, converted, path, fid):
    job_fid, mp3_fid, _ = converted
    value = {
        "others": job_fid,  # asked by bob
        "mp3-of-others": mp3_fid,
        "unknown": str(ObjectId()),
        "malformed": "not-an-id",
        "injection": '{"$ne": null}',
    }[fid]
    response = client.get(path, query_string={"fid": value}, headers=bob.headers)
    assert response.status_code == 404
    assert response.get_json() == {
        "error": "not_found",
        "message": "You have no file with that fid.",
    }


@pytest.mark.parametrize("path", ["/status", "/download"])
def test_no_fid_is_400(client, alice, path):
    response = client.get(path, headers=alice.headers)
    assert response.status_code == 400
    assert response.get_json()["error"] == "missing_fid"


@pytest.mark.parametrize("path", ["/status?fid=x", "/download?fid=x", "/jobs"])
def test_reading_needs_a_token(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.get_json()["error"] == "missing_token"


@pytest.mark.stack
def test_download_before_conversion_is_409_with_the_state(client, alice, queued, stored):
    response = client.get(f"/download?fid={queued}", headers=alice.headers)
    assert response.status_code == 409
    assert response.get_json()["error"] == "not_ready"
    assert response.get_json()["state"] == "queued"
    stored.jobs.start(ObjectId(queued))
    response = client.get(f"/download?fid={queued}", headers=alice.headers)
    assert response.get_json()["state"] == "converting"


@pytest.mark.stack
def test_download_of_a_failed_job_is_422_with_the_reason(client, alice, queued, stored):
    stored.jobs.fail(ObjectId(queued), "the video has no audio track")
    response = client.get(f"/download?fid={queued}", headers=alice.headers)
    assert response.status_code == 422
    assert response.get_json()["error"] == "conversion_failed"
    assert response.get_json()["reason"] == "the video has no audio track"


@pytest.mark.parametrize("which", ["upload fid", "mp3 fid"])
@pytest.mark.stack
def test_download_streams_the_mp3(client, alice, converted, which):
    fid, mp3_fid, mp3 = converted
    response = client.get(
        "/download",
        query_string={"fid": fid if which == "upload fid" else mp3_fid},
        headers=alice.headers,
    )
    assert response.status_code == 200
    assert response.mimetype == "audio/mpeg"
    assert response.headers["Content-Length"] == str(len(mp3))
    assert response.headers["Content-Disposition"] == 'attachment; filename="holiday clip.mp3"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.get_data() == mp3


@pytest.mark.stack
def test_a_non_ascii_name_gets_an_ascii_fallback(client, alice, media, stored):
    fid = upload(client, alice, [("file", "Überraschung 🎉.mp4", media["mp4"])]).get_json()["fid"]
    stored.finish_job(fid, media["mp3"])
    disposition = client.get(f"/download?fid={fid}", headers=alice.headers).headers[
        "Content-Disposition"
    ]
    assert 'filename="Uberraschung tada.mp3"' in disposition
    assert "filename*=UTF-8''%C3%9Cberraschung%20%F0%9F%8E%89.mp3" in disposition


@pytest.fixture
def big_mp3(client, alice, media, stored):
    """A done job whose MP3 spans several GridFS chunks: (fid, bytes)."""
    fid = upload(client, alice, [("file", "long.mp4", media["mp4"])]).get_json()["fid"]
    content = os.urandom(2 * MiB + 12345)
    stored.finish_job(fid, content)
    return fid, content


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, None),
        ("bytes=-500", -500, None),
        ("bytes=1048000-1049999", 1048000, 1049999),  # across a chunk boundary
        ("bytes=2097000-", 2097000, None),  # a seek to the last chunk
    ],
)
@pytest.mark.stack
def test_range_requests_get_206_with_exactly_those_bytes(
    client, alice, big_mp3, header, start, end
):
    fid, content = big_mp3
    response = client.get(f"/download?fid={fid}", headers={**alice.headers, "Range": header})
    assert response.status_code == 206
    expected = content[start : None if end is None else end + 1]
    assert response.get_data() == expected
    first = start % len(content)
    assert response.headers["Content-Range"] == (
        f"bytes {first}-{first + len(expected) - 1}/{len(content)}"
    )
    assert response.headers["Content-Length"] == str(len(expected))


@pytest.mark.stack
def test_a_range_outside_the_file_is_416_json(client, alice, big_mp3):
    fid, content = big_mp3
    response = client.get(
        f"/download?fid={fid}", headers={**alice.headers, "Range": f"bytes={len(content)}-"}
    )
    assert response.status_code == 416
    assert response.get_json()["error"] == "range_not_satisfiable"
    assert response.headers["Content-Range"] == f"bytes */{len(content)}"


@pytest.mark.stack
def test_a_resumed_download_with_if_range_gets_the_rest(client, alice, big_mp3):
    fid, content = big_mp3
    first = client.get(f"/download?fid={fid}", headers=alice.headers)
    etag = first.headers["ETag"]
    rest = client.get(
        f"/download?fid={fid}",
        headers={**alice.headers, "Range": "bytes=1000-", "If-Range": etag},
    )
    assert rest.status_code == 206
    assert first.get_data()[:1000] + rest.get_data() == content


@pytest.mark.stack
def test_jobs_lists_your_own_newest_first_in_pages(client, alice, bob, media, database):
    # A fresh owner for this test: the session's alice has jobs from other tests' databases
    # only, but this database is the test's own, so counts here are exact.
    names = [f"clip-{n}.mp4" for n in range(3)]
    for name in names:
        assert upload(client, alice, [("file", name, media["mp4"])]).status_code == 202
    assert upload(client, bob, [("file", "bobs.mp4", media["mp4"])]).status_code == 202

    everything = client.get("/jobs", headers=alice.headers).get_json()
    assert [job["filename"] for job in everything["jobs"]] == names[::-1]
    assert everything["total"] == 3
    assert everything["next"] is None

    page1 = client.get("/jobs?per_page=2", headers=alice.headers).get_json()
    assert [job["filename"] for job in page1["jobs"]] == names[:0:-1]
    assert page1["next"] == "/jobs?page=2&per_page=2"
    page2 = client.get(page1["next"], headers=alice.headers).get_json()
    assert [job["filename"] for job in page2["jobs"]] == names[:1]
    assert page2["next"] is None


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=x", "per_page=0", "per_page=101"])
def test_bad_paging_is_400(client, alice, query):
    response = client.get(f"/jobs?{query}", headers=alice.headers)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_page"
    assert re.search(r"page", response.get_json()["message"])


@pytest.mark.stack
def test_a_name_with_no_ascii_at_all_is_transliterated(client, alice, media, stored):
    """Not '.mp3', which would save as a hidden file."""
    fid = upload(client, alice, [("file", "日本語の動画.mov", media["mp4"])]).get_json()["fid"]
    stored.finish_job(fid, media["mp3"])
    disposition = client.get(f"/download?fid={fid}", headers=alice.headers).headers[
        "Content-Disposition"
    ]
    assert "filename=RiBenYunoDongHua.mp3" in disposition
    assert (
        "filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E%E3%81%AE%E5%8B%95%E7%94%BB.mp3" in disposition
    )
