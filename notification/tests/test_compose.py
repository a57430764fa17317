import re

import pytest
from bson import ObjectId

from mp3common.jobs import Job
from notification_service.compose import (
    InvalidAddress,
    compose,
    download_command,
    mail_address,
    output_name,
)

FID = ObjectId("65a1b2c3d4e5f60718293a4b")


def _job(**changes) -> Job:
    document = {
        "_id": FID,
        "owner": "alice@example.com",
        "filename": "holiday clip.mp4",
        "state": "done",
        "mp3_fid": ObjectId(),
        "reason": None,
    }
    return Job.from_document(document | changes)


def _compose(job):
    return compose(job, sender="mp3converter@example.com", public_url="http://mp3converter.com")


def test_a_done_mail_names_the_file_its_id_and_the_exact_download_command():
    message = _compose(_job())
    assert message["To"] == "alice@example.com"
    assert message["From"] == "mp3converter <mp3converter@example.com>"
    assert message["Subject"] == "Your MP3 is ready: holiday clip.mp4"
    assert message["Message-ID"] == f"<job-{FID}-done@mp3converter.com>"
    body = message.get_content()
    assert '"holiday clip.mp4"' in body
    assert f"File id: {FID}" in body
    assert (
        '    curl -H "Authorization: Bearer <JWT_TOKEN>" \\\n'
        f'      "http://mp3converter.com/download?fid={FID}" \\\n'
        "      -o holiday_clip.mp3\n"
    ) in body
    assert (
        '    curl -X POST -u "alice@example.com:<PASSWORD>" \\\n'
        "      http://mp3converter.com/login\n"
    ) in body
    assert message.get_content_type() == "text/plain"


def test_a_done_mail_passes_on_the_jobs_warning():
    warning = "only 3.7 s of 10.0 s could be read; the file looks cut off"
    body = _compose(_job(warning=warning)).get_content()
    assert f"\nPlease note: {warning}.\n" in body
    assert "Please note" not in _compose(_job()).get_content()


def test_the_mail_is_plain_7bit_text_with_short_lines():
    for state in ("done", "failed"):
        message = _compose(_job(state=state, reason="the video has no audio track"))
        assert message["Content-Transfer-Encoding"] == "7bit"
        assert max(map(len, message.get_content().splitlines())) <= 78


def test_a_failed_mail_says_why_and_what_to_do():
    message = _compose(_job(state="failed", reason="the video has no audio track"))
    assert message["Subject"] == "We could not convert holiday clip.mp4"
    body = message.get_content()
    assert "Reason:  the video has no audio track" in body
    assert f"File id: {FID}" in body
    assert "upload it again" in body and "http://mp3converter.com/upload" in body
    assert "/download" not in body


@pytest.mark.parametrize(
    ("filename", "subject_name"),
    [
        ("evil\r\nBcc: everyone@example.com.mp4", "evil Bcc: everyone@example.com.mp4"),
        ("", "your video"),
        (None, "your video"),
        ("x" * 300 + ".mp4", "x" * 79 + "…"),
        ("été à la plage.mp4", "été à la plage.mp4"),
        # Unicode line and paragraph separators, format and control characters: the
        # U+2028 once made composing raise after the claim, stalling every mail behind it.
        ("a\u2028b.mp4", "a b.mp4"),
        ("a\u2029b\u0085c.mp4", "a b c.mp4"),
        ("rtl\u202etxt.mp4", "rtl txt.mp4"),
        ("zero\u200bwidth\ufeff.mp4", "zero width .mp4"),
        ("tab\tand\x0bvt.mp4", "tab and vt.mp4"),
        ("lone \udc80 surrogate.mp4", "lone surrogate.mp4"),
    ],
)
def test_the_file_name_cannot_break_the_headers(filename, subject_name):
    message = _compose(_job(filename=filename))
    assert message["Subject"] == f"Your MP3 is ready: {subject_name}"
    assert message["Bcc"] is None
    assert "\nBcc:" not in message.as_string()
    for state in ("done", "failed"):  # every header and body serialises, as SMTP sends it
        _compose(_job(filename=filename, state=state, reason="r\u2028s")).as_bytes()


@pytest.mark.parametrize(
    ("owner", "to"),
    [
        ("alice@example.com", "alice@example.com"),
        ("someone@exämple.com", "someone@xn--exmple-cua.com"),
        ("ann@bücher.example", "ann@xn--bcher-kva.example"),
        ("jörg@example.com", "jörg@example.com"),  # the local part needs SMTPUTF8
    ],
)
def test_the_domain_goes_out_as_idna(owner, to):
    assert mail_address(owner) == to
    assert _compose(_job(owner=owner))["To"] == to


@pytest.mark.parametrize(
    "owner", ["nobody", "@example.com", "ann@", "a b@example.com", "ann@ex\u2028ample.com"]
)
def test_an_owner_that_is_no_address_is_refused_with_a_reason(owner):
    with pytest.raises(InvalidAddress, match="is not an email address"):
        _compose(_job(owner=owner))


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("clip.mp4", "clip.mp3"),
        ("my holiday.final.mov", "my_holiday.final.mp3"),
        ('x"; rm -rf ~; ".mp4', "x_rm_-rf.mp3"),
        ("$(reboot).mkv", "reboot.mp3"),
        ("../../etc/passwd", "passwd.mp3"),
        ("C:\\videos\\clip.avi", "clip.mp3"),
        (".hidden", "hidden.mp3"),
        ("", "output.mp3"),
        (None, "output.mp3"),
    ],
)
def test_the_output_name_in_the_command_is_shell_safe(filename, expected):
    assert output_name(filename) == expected
    command = download_command("http://mp3converter.com", str(FID), filename)
    assert re.search(r"\n  -o [A-Za-z0-9._-]+\.mp3$", command)
