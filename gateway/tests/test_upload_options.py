"""The conversion options on POST /upload (issue 13): form fields beside the file, judged
by the catalog (mp3common.options) before a byte is stored when they come first, and with
everything stored removed when they come after the file; GET /formats."""

import json

import pytest
from bson import ObjectId
from conftest import upload
from forms import upload_with_options

from gateway_service import openapi
from mp3common.options import CHANNELS, FORMATS, OPTION_NAMES, describe
from mp3testing import get_message

NOTHING = {"files": 0, "chunks": 0, "jobs": 0}

# Each row: the fields, then the option the 400 names.
BAD_OPTIONS = [
    ("unknown-format", {"format": "ogg"}, "format"),
    ("quality-of-another-format", {"format": "opus", "quality": "V0"}, "quality"),
    ("quality-nonsense", {"quality": "best"}, "quality"),
    ("start-not-a-time", {"start": "soon"}, "start"),
    ("start-seconds-over-59", {"start": "1:75"}, "start"),
    ("end-before-start", {"start": "20", "end": "10"}, "end"),
    ("end-past-any-media", {"end": "999999999"}, "end"),
    ("normalize-too-loud", {"normalize": "0"}, "normalize"),
    ("normalize-not-a-number", {"normalize": "loud"}, "normalize"),
    ("track-out-of-range", {"track": "64"}, "track"),
    ("track-not-a-language", {"track": "english"}, "track"),
    ("channels-surround", {"channels": "5.1"}, "channels"),
    ("superscript-digit", {"track": "²"}, "track"),
    ("no-such-option", {"bitrate": "320k"}, "bitrate"),
]


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize(
    ("fields", "option"), [row[1:] for row in BAD_OPTIONS], ids=[row[0] for row in BAD_OPTIONS]
)
@pytest.mark.stack
def test_a_bad_option_is_a_400_naming_it_and_nothing_is_kept(
    client, alice, media, stored, fields, option, where
):
    response = upload_with_options(client, alice, media["mp4"], **{where: fields})
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid_option"
    assert body["option"] == option
    assert option in body["message"]
    assert "allowed" in body
    assert stored.counts() == NOTHING


@pytest.mark.stack
def test_a_bad_option_before_the_file_is_refused_before_the_file_is_read(client, alice, stored):
    """The file is no media at all: judged first, it would be a 415."""
    response = upload_with_options(client, alice, b"not a video" * 100, before={"format": "x"})
    assert response.status_code == 400
    assert response.get_json()["allowed"] == list(FORMATS)


@pytest.mark.stack
def test_a_bad_option_after_a_large_file_removes_the_stored_chunks(client, alice, media, stored):
    content = media["mp4"] + b"\0" * (5 * 1024 * 1024)
    response = upload_with_options(client, alice, content, after={"channels": "quad"})
    assert response.status_code == 400
    assert response.get_json()["option"] == "channels"
    assert stored.counts() == NOTHING


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.stack
def test_options_are_on_the_job_the_answer_the_status_and_the_message(
    client, alice, media, stored, queue_name, where
):
    options = {"format": "opus", "quality": "96k", "start": "0:01", "end": "1.5",
               "normalize": "-16", "track": "eng", "channels": "mono"}  # fmt: skip
    response = upload_with_options(client, alice, media["mp4"], **{where: options})
    assert response.status_code == 202, response.get_json()
    expected = {"format": "opus", "quality": "96k", "start": 1.0, "end": 1.5,
                "normalize": -16.0, "track": "eng", "channels": "mono"}  # fmt: skip
    body = response.get_json()
    assert body["options"] == expected
    assert body["notes"] == []
    fid = body["fid"]
    status = client.get(f"/status?fid={fid}", headers=alice.headers).get_json()
    assert status["options"] == expected
    assert stored.jobs.get(ObjectId(fid)).options.format == "opus"
    message, _ = get_message(queue_name)
    assert json.loads(message)["format"] == "opus"


@pytest.mark.stack
def test_no_options_is_todays_mp3(client, alice, media):
    body = upload(client, alice, [("file", "clip.mp4", media["mp4"])]).get_json()
    assert body["options"] == {"format": "mp3", "quality": "V2", "start": None, "end": None,
                               "normalize": None, "track": None, "channels": None}  # fmt: skip
    assert body["notes"] == []


@pytest.mark.stack
def test_an_empty_field_is_an_option_not_given(client, alice, media):
    fields = {"format": "", "quality": " ", "start": "", "channels": ""}
    response = upload_with_options(client, alice, media["mp4"], before=fields)
    assert response.status_code == 202
    assert response.get_json()["options"]["format"] == "mp3"


@pytest.mark.stack
def test_a_quality_for_a_lossless_format_is_ignored_with_a_note(client, alice, media):
    fields = {"format": "flac", "quality": "320k"}
    body = upload_with_options(client, alice, media["mp4"], before=fields).get_json()
    assert body["options"]["quality"] is None
    assert body["notes"] == ["quality is ignored for flac, a lossless format"]


@pytest.mark.stack
def test_a_quality_before_the_file_waits_for_a_format_after_it(client, alice, media):
    """96k is no MP3 quality but an m4a one; the format comes after the file."""
    response = upload_with_options(
        client, alice, media["mp4"], before={"quality": "96k"}, after={"format": "m4a"}
    )
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["options"]["quality"] == "96k"


@pytest.mark.stack
def test_an_option_given_twice_is_refused(client, alice, media, stored):
    response = upload_with_options(
        client, alice, media["mp4"], before={"format": "opus"}, after={"format": "m4a"}
    )
    assert response.status_code == 400
    assert response.get_json()["option"] == "format"
    assert stored.counts() == NOTHING


def test_formats_is_the_catalog_and_needs_no_token(client):
    response = client.get("/formats")
    assert response.status_code == 200
    assert response.get_json() == json.loads(json.dumps(describe()))


def test_the_documents_option_fields_are_the_catalogs():
    form = openapi.document()["paths"]["/upload"]["post"]["requestBody"]["content"]
    fields = form["multipart/form-data"]["schema"]["properties"]
    assert list(fields) == ["file", *OPTION_NAMES]
    assert fields["format"]["enum"] == [*FORMATS, ""]  # "": an empty field is none given
    qualities = {quality.name for output in FORMATS.values() for quality in output.qualities}
    assert set(fields["quality"]["enum"]) == qualities | {""}
    assert fields["channels"]["enum"] == [*CHANNELS, ""]
