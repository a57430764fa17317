import datetime as dt
import re
import textwrap

import pytest
from bson import ObjectId

from mp3common.jobs import Job
from mp3common.options import FORMATS, ConversionOptions, parse_options
from notification_service.compose import (
    InvalidAddress,
    compose,
    download_command,
    mail_address,
    moment_in_words,
    option_fields,
    output_name,
    time_left_in_words,
)

FID = ObjectId("65a1b2c3d4e5f60718293a4b")
#: When the mails of these tests are sent; a file kept 7 days from (about) then.
NOW = dt.datetime(2026, 11, 30, 14, 5, 40, tzinfo=dt.UTC)
IN_A_WEEK = dt.datetime(2026, 12, 7, 14, 5, 30, tzinfo=dt.UTC)
OPUS = {"format": "opus", "quality": "96k", "start": "10", "end": "1:00", "normalize": "-16"}


def _job(**changes) -> Job:
    """A job's document as MongoDB hands it back (naive UTC times); by default one from
    before issue 13: no options (MP3), no expiry."""
    document = {
        "_id": FID,
        "owner": "alice@example.com",
        "filename": "holiday clip.mp4",
        "state": "done",
        "mp3_fid": ObjectId(),
        "reason": None,
    }
    return Job.from_document(document | changes)


def _options(fields: dict[str, str]) -> dict:
    """The options as the gateway stores them on a job."""
    options, _ = parse_options(fields)
    return options.model_dump(mode="json")


def _compose(job, now=NOW):
    return compose(
        job, sender="mp3converter@example.com", public_url="http://mp3converter.com", now=now
    )


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


# --- formats, options, notes and expiry (issue 13) ---------------------------------------


def test_a_done_mail_says_the_format_the_options_and_when_the_file_is_deleted():
    job = _job(
        options=_options(OPUS),
        notes=["channels: the source is mono already"],
        expires_at=IN_A_WEEK.replace(tzinfo=None),
    )
    message = _compose(job)
    assert message["Subject"] == "Your audio is ready, converted to Opus: holiday clip.mp4"
    body = message.get_content()
    assert 'your video "holiday clip.mp4" has been converted to Opus.\n' in body
    assert (
        f"File id: {FID}\n"
        "Options: Opus 96k, 0:10-1:00, normalized to -16 LUFS\n"
        "Note:    channels: the source is mono already\n"
    ) in body
    assert f'"http://mp3converter.com/download?fid={FID}" \\\n      -o holiday_clip.opus\n' in body
    assert (
        "\nIt will be deleted on Mon 7 Dec 2026, 14:05 UTC (in 7 days); download it\nbefore then.\n"
    ) in body
    assert ".mp3" not in body and "MP3" not in body


@pytest.mark.parametrize(
    ("name", "done", "failed", "sentence"),
    [
        ("mp3", "Your MP3 is ready: clip.mov", "We could not convert clip.mov", "to MP3."),
        (
            "m4a",
            "Your audio is ready, converted to AAC: clip.mov",
            "We could not convert clip.mov to AAC",
            "to AAC (M4A).",
        ),
        (
            "opus",
            "Your audio is ready, converted to Opus: clip.mov",
            "We could not convert clip.mov to Opus",
            "to Opus.",
        ),
        (
            "flac",
            "Your audio is ready, converted to FLAC: clip.mov",
            "We could not convert clip.mov to FLAC",
            "to FLAC (lossless).",
        ),
        (
            "wav",
            "Your audio is ready, converted to WAV: clip.mov",
            "We could not convert clip.mov to WAV",
            "to WAV (lossless, uncompressed).",
        ),
    ],
)
def test_the_subject_and_the_download_name_follow_the_format(name, done, failed, sentence):
    options = _options({"format": name})
    message = _compose(_job(filename="clip.mov", options=options))
    assert message["Subject"] == done
    body = message.get_content()
    assert f'"clip.mov" has been converted {sentence}\n' in body
    assert body.count(f"  -o clip.{FORMATS[name].extension}\n") == 1
    message = _compose(_job(filename="clip.mov", state="failed", reason="x", options=options))
    assert message["Subject"] == failed
    assert f'could not convert your video "clip.mov" {sentence}\n' in message.get_content()


@pytest.mark.parametrize(
    ("fields", "copied", "line"),
    [
        ({}, False, "Options: MP3 V2"),
        ({}, True, "Options: MP3 (copied without re-encoding)"),
        (
            {"format": "m4a", "start": "5"},
            True,
            "Options: AAC (copied without re-encoding), 0:05-end",
        ),
        ({"quality": "320k", "channels": "mono"}, False, "Options: MP3 320k, mono"),
        ({"format": "flac", "track": "deu"}, False, "Options: FLAC, audio track deu"),
    ],
)
def test_the_options_line_says_what_was_asked_and_whether_it_was_copied(fields, copied, line):
    body = _compose(_job(options=_options(fields), copied=copied)).get_content()
    assert f"\n{line}\n" in body


def test_every_note_is_a_line_of_its_own_and_a_long_one_wraps_under_itself():
    options, notes = parse_options({"format": "flac", "quality": "V0"})
    long = "start: the video is 12 s long, so the trim from 0:20 " + "was ignored " * 4
    job = _job(options=options.model_dump(mode="json"), notes=[*notes, long])
    body = _compose(job).get_content()
    assert "\nNote:    quality is ignored for flac, a lossless format\n" in body
    wrapped = textwrap.fill(
        long.strip(), width=72, initial_indent="Note:    ", subsequent_indent=" " * 9
    )
    assert f"\n{wrapped}\n" in body
    assert "Note:" not in _compose(_job()).get_content()


def test_a_failed_mail_says_until_when_the_job_can_be_retried_and_how():
    job = _job(
        state="failed",
        reason="the converter timed out",
        options=_options(OPUS),
        expires_at=dt.datetime(2026, 12, 3, 14, 5, 59),
    )
    message = _compose(job)
    assert message["Subject"] == "We could not convert holiday clip.mp4 to Opus"
    body = message.get_content()
    assert (
        f"File id: {FID}\n"
        "Reason:  the converter timed out\n"
        "Options: Opus 96k, 0:10-1:00, normalized to -16 LUFS\n"
    ) in body
    assert (
        "Your video is kept until Thu 3 Dec 2026, 14:05 UTC (in 3 days), then\n"
        "deleted. Until then you can retry the conversion without uploading it\n"
    ) in body
    assert (
        '    curl -X POST -H "Authorization: Bearer <JWT_TOKEN>" \\\n'
        f'      "http://mp3converter.com/jobs/{FID}/retry"\n'
    ) in body
    # Uploading again asks for the same options.
    assert (
        '    curl -X POST -H "Authorization: Bearer <JWT_TOKEN>" \\\n'
        '        -F "file=@video.mp4" -F "format=opus" -F "quality=96k" \\\n'
        '        -F "start=0:10" -F "end=1:00" -F "normalize=-16" \\\n'
        "        http://mp3converter.com/upload\n"
    ) in body


def test_a_mail_later_than_the_expiry_says_so():
    past = NOW - dt.timedelta(hours=1)
    done = _compose(_job(expires_at=past)).get_content()
    assert "It was to be deleted on Mon 30 Nov 2026, 13:05 UTC, before this mail" in done
    assert "will be deleted" not in done
    failed = _compose(_job(state="failed", reason="x", expires_at=past)).get_content()
    assert "Its video was kept until Mon 30 Nov 2026, 13:05 UTC, so it cannot be\nretried" in failed
    assert "/retry" not in failed
    assert "http://mp3converter.com/upload" in failed


@pytest.mark.parametrize(
    ("left", "words"),
    [
        (dt.timedelta(days=7) - dt.timedelta(seconds=10), "in 7 days"),
        (dt.timedelta(days=30), "in 30 days"),
        (dt.timedelta(hours=36), "in 2 days"),
        (dt.timedelta(hours=35), "in 35 hours"),
        (dt.timedelta(days=1), "in 24 hours"),
        (dt.timedelta(hours=1, minutes=30), "in 2 hours"),
        (dt.timedelta(minutes=89), "in 89 minutes"),
        (dt.timedelta(minutes=1), "in 1 minute"),
        (dt.timedelta(seconds=59), "in less than a minute"),
    ],
)
def test_the_time_left_is_said_roughly(left, words):
    assert time_left_in_words(left) == words


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(2026, 12, 7, 14, 5, 59, 999000),  # naive, as pymongo reads it: UTC
        dt.datetime(2026, 12, 7, 14, 5, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 7, 15, 5, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    ],
)
def test_a_moment_is_written_in_utc_to_the_minute_in_english(moment):
    assert moment_in_words(moment) == "Mon 7 Dec 2026, 14:05 UTC"


def test_a_job_from_before_options_and_expiry_mails_as_before():
    """No options (MP3 at V2), no expires_at (kept until deleted): the subjects, the
    download name and the upload command are the reference's; nothing is said of deletion
    or retrying."""
    done = _compose(_job())
    assert done["Subject"] == "Your MP3 is ready: holiday clip.mp4"
    assert done.get_content() == (
        "Hello,\n\n"
        'your video "holiday clip.mp4" has been converted to MP3.\n\n'
        f"File id: {FID}\n"
        "Options: MP3 V2\n\n"
        "Download it with:\n\n"
        '    curl -H "Authorization: Bearer <JWT_TOKEN>" \\\n'
        f'      "http://mp3converter.com/download?fid={FID}" \\\n'
        "      -o holiday_clip.mp3\n\n"
        "where <JWT_TOKEN> is what logging in answers:\n\n"
        '    curl -X POST -u "alice@example.com:<PASSWORD>" \\\n'
        "      http://mp3converter.com/login\n\n"
        "mp3converter: an automatic message, replies are not read.\n"
    )
    failed = _compose(_job(state="failed", reason="the video has no audio track"))
    assert failed["Subject"] == "We could not convert holiday clip.mp4"
    assert failed.get_content() == (
        "Hello,\n\n"
        'we could not convert your video "holiday clip.mp4" to MP3.\n\n'
        f"File id: {FID}\n"
        "Reason:  the video has no audio track\n"
        "Options: MP3 V2\n\n"
        "What to do: check that the file plays on your computer and has a sound\n"
        "track (a silent video has nothing to convert), then upload it again:\n\n"
        '    curl -X POST -H "Authorization: Bearer <JWT_TOKEN>" \\\n'
        '        -F "file=@video.mp4" http://mp3converter.com/upload\n\n'
        "If it keeps failing, tell your administrator the file id above.\n\n"
        "mp3converter: an automatic message, replies are not read.\n"
    )


def test_a_retried_jobs_next_mail_has_a_message_id_of_its_own():
    """Mail systems that deduplicate by Message-ID would hide it as a copy of the first."""
    first = _compose(_job(state="failed", reason="x"))["Message-ID"]
    again = _compose(_job(state="failed", reason="x", retries=1))["Message-ID"]
    assert first == f"<job-{FID}-failed@mp3converter.com>"
    assert again == f"<job-{FID}-failed-retry1@mp3converter.com>"
    assert _compose(_job(retries=2))["Message-ID"] == f"<job-{FID}-done-retry2@mp3converter.com>"


def test_the_mail_is_dated_when_it_is_composed():
    assert _compose(_job())["Date"].datetime == NOW


def test_a_mail_with_every_paragraph_is_plain_7bit_text_with_short_lines():
    for state in ("done", "failed"):
        job = _job(
            state=state,
            reason="the converter timed out " * 5,
            warning="only 3.7 s of 10.0 s could be read; the file looks cut off",
            options=_options(
                OPUS
                | {"start": "1:02:03.25", "end": "1:02:04.5", "track": "eng"}
                | {"channels": "stereo"}
            ),
            notes=["a note that goes on and on " * 4],
            expires_at=IN_A_WEEK,
        )
        message = _compose(job)
        assert message["Content-Transfer-Encoding"] == "7bit"
        assert max(map(len, message.get_content().splitlines())) <= 78


def test_what_comes_from_the_job_cannot_break_lines_or_commands():
    """Notes, the reason and options are validated where they are made, but the mail
    trusts no record: a stored value with line breaks or shell syntax is made harmless."""
    options = ConversionOptions(format="opus", track='x"; rm -rf ~ #\u2028', quality="96k")
    job = _job(
        state="failed",
        reason="bad\u2028Bcc: x@example.com",
        notes=["one\r\ntwo\u2029three", "\u200b"],
        options=options.model_dump(mode="json"),
        expires_at=IN_A_WEEK,
    )
    body = _compose(job).get_content()
    assert "Reason:  bad Bcc: x@example.com\n" in body
    assert "\nNote:    one two three\n" in body
    assert body.count("Note:") == 1  # a note of nothing but a format character is none
    assert 'Options: Opus 96k, audio track x"; rm -rf ~ #\n' in body
    assert option_fields(options) == ["format=opus", "track=x_rm_-rf_"]
    assert '-F "track=x_rm_-rf_"' in body
    assert "\u2028" not in body and "\u2029" not in body
