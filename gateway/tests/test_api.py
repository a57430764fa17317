"""The API described and validated from one place (api.py, openapi.py), and gunicorn's
own refusals in the same JSON shape (mp3common.gunicorn_refusals)."""

from __future__ import annotations

import json
import re
import socket

import pytest
from conftest import upload
from werkzeug.datastructures import MultiDict

from gateway_service import openapi
from gateway_service.api import MAX_PAGE, JobsQuery
from mp3common.gunicorn_refusals import write_json_error

NINES_PAST_INT64 = "9" * 25


@pytest.mark.parametrize(
    "query",
    [
        "page=²",  # str.isdigit() says yes, int() says no: it was a 500
        "per_page=¹",
        "page=9223372036854775807",  # int64's largest: (page - 1) * per_page overflowed
        f"page={NINES_PAST_INT64}",  # past BSON's int64: it was a 500
        f"page={MAX_PAGE + 1}",
        "page=٣",  # Arabic-Indic three
        "page=+1",
        "page=1_000",
        "page=1.0",
        "page=%201",
        "page=",
        "page=0",
        "page=-1",
        "page=x",
        "per_page=0",
        "per_page=101",
        "per_page=",
    ],
)
def test_bad_paging_is_a_400_naming_the_parameter(client, alice, query):
    response = client.get(f"/jobs?{query}", headers=alice.headers)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_page"
    assert body["message"].startswith(query.split("=")[0] + " must be")


@pytest.mark.parametrize(
    ("args", "page", "per_page"),
    [
        ({}, 1, 20),
        ({"page": "3", "per_page": "100"}, 3, 100),
        ({"page": str(MAX_PAGE)}, MAX_PAGE, 20),
        ({"page": "007"}, 7, 20),
        ({"page": ["2", "x"]}, 2, 20),  # a repeated parameter: the first counts
        ({"sort": "whatever"}, 1, 20),  # an unknown one is ignored
    ],
)
def test_good_paging(args, page, per_page):
    query = JobsQuery.from_request(MultiDict(args))
    assert (query.page, query.per_page) == (page, per_page)


def test_the_largest_page_still_skips_an_int64():
    assert (MAX_PAGE - 1) * 100 < 2**63


@pytest.mark.parametrize("query", ["", "fid=", "fid=%20%20", "fid=%09"])
@pytest.mark.parametrize("path", ["/status", "/download"])
def test_no_fid_is_400(client, alice, path, query):
    response = client.get(f"{path}?{query}", headers=alice.headers)
    assert response.status_code == 400
    assert response.get_json()["error"] == "missing_fid"


@pytest.mark.parametrize("subject", ["", "   "])
def test_a_token_that_names_nobody_is_401_not_503(client, fake_auth, subject):
    """Auth answered 200 with an empty `sub` (a token signed with the right key but made
    for nobody): the token is bad, not the auth service."""
    fake_auth.tokens[f"nobody-{len(subject)}"] = subject
    response = client.get("/jobs", headers={"Authorization": f"Bearer nobody-{len(subject)}"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def test_the_document_describes_every_route(app, client):
    document = client.get("/openapi.json").get_json()
    assert document == openapi.document()
    assert document["openapi"].startswith("3.1")
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())  # /jobs/{fid}
        for rule in app.url_map.iter_rules()
        # /metrics answers only on METRICS_PORT, for Prometheus: not the users' API; nor
        # is the web page (/, /web/…): files for browsers.
        if rule.endpoint not in ("static", "web.index", "web.static") and rule.rule != "/metrics"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    # HEAD and OPTIONS are described where they are the route's own (tus: /uploads).
    own = {(path, method) for path, method in described if method in ("head", "options")}
    assert own == {("/uploads", "options"), ("/uploads/{fid}", "head")}
    assert served == described - own


def test_every_error_answer_has_the_json_error_shape():
    for item in openapi.document()["paths"].values():
        for operation in item.values():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    assert "Error" in json.dumps(schema) or "NotReady" in json.dumps(schema)


def test_a_405_says_what_is_allowed(client):
    response = client.delete("/jobs")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}


@pytest.mark.parametrize(
    ("status", "reason", "error"),
    [
        (431, "Request Header Fields Too Large", "request_header_fields_too_large"),
        (414, "URI Too Long", "uri_too_long"),
        (400, "Bad Request", "bad_request"),
        (418, "I'm a teapot", "i'm_a_teapot"),
    ],
)
def test_gunicorns_refusals_are_json(status, reason, error):
    ours, theirs = socket.socketpair()
    with ours, theirs:
        write_json_error(ours, status, reason, "<script>echoed input</script>")
        ours.close()
        answer = b""
        while chunk := theirs.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == f"HTTP/1.1 {status} {reason}"
    assert "Content-Type: application/json" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert "Connection: close" in lines
    assert json.loads(body)["error"] == error
    assert b"script" not in body


def test_unreadable_basic_credentials_are_not_a_500(client):
    """Werkzeug's parser raised ValueError on non-ASCII Basic credentials, and the login
    limits read them first. The fake auth, like auth itself when this was found, fails
    on them with a 500 of its own, which the gateway tells as auth being unavailable."""
    response = client.post("/login", headers={"Authorization": "Basic ééé"})
    assert response.status_code == 503
    assert response.get_json()["error"] == "auth_unavailable"


@pytest.mark.stack
@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        ("If-Match", "{etag}", 200),
        ("If-Match", "*", 200),  # Werkzeug answered 412
        ("If-Match", '"another"', 412),  # Werkzeug answered 412 with the whole MP3 as body
        ("If-Match", 'W/"{bare}"', 412),  # a weak tag never matches If-Match
        ("If-Unmodified-Since", "Wed, 01 Jan 2100 00:00:00 GMT", 200),
        ("If-Unmodified-Since", "Sat, 01 Jan 2000 00:00:00 GMT", 412),  # Werkzeug: 200
        ("If-Unmodified-Since", "not a date", 200),  # ignored, as RFC 9110 says
        ("If-None-Match", "{etag}", 304),
        ("If-None-Match", "*", 304),
        ("If-None-Match", '"another"', 200),
        ("If-Modified-Since", "Wed, 01 Jan 2100 00:00:00 GMT", 304),
    ],
)
def test_conditional_downloads(client, alice, media, stored, header, value, status):
    fid = upload(client, alice, [("file", "clip.mp4", media["mp4"])]).get_json()["fid"]
    stored.finish_job(fid, media["mp3"])
    plain = client.get("/download", query_string={"fid": fid}, headers=alice.headers)
    etag = plain.headers["ETag"]
    value = value.format(etag=etag, bare=etag.strip('"'))
    response = client.get(
        "/download", query_string={"fid": fid}, headers={**alice.headers, header: value}
    )
    assert response.status_code == status
    if status == 200:
        assert response.get_data() == media["mp3"]
    elif status == 412:
        assert response.get_json()["error"] == "precondition_failed"
        assert response.headers["ETag"] == etag
    else:
        assert response.get_data() == b""


@pytest.mark.stack
@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("bytes=0-9", 206),
        ("bytes=-10", 206),
        ("bytes=99999999-", 416),  # past the end
        ("bytes=0-0,5-10", 200),  # several ranges: not served, so ignored (was 416)
        ("items=0-5", 200),  # another unit: ignored, as RFC 9110 says (was 416)
        ("bytes=5-1", 200),  # unreadable: ignored (was 416)
        ("bytes=²-5", 200),
    ],
)
def test_ranges(client, alice, media, stored, value, status):
    fid = upload(client, alice, [("file", "clip.mp4", media["mp4"])]).get_json()["fid"]
    stored.finish_job(fid, media["mp3"])
    response = client.get(
        "/download", query_string={"fid": fid}, headers={**alice.headers, "Range": value}
    )
    assert response.status_code == status
    if status == 200:
        assert response.get_data() == media["mp3"]
    elif status == 206:
        assert len(response.get_data()) == 10
    else:
        assert response.get_json()["error"] == "range_not_satisfiable"
