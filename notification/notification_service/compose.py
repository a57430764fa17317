"""The mail a user gets for a finished job: what happened, the file id, what to run next.

Plain text, because the body is mostly commands to copy. It says the format and options
the owner asked for (mp3common.options: `Options: Opus 96k, 0:10-1:00`, and that the
stream was copied without re-encoding when it was), the notes on options that were ignored,
any warning, and when what is kept of the job is deleted (`expires_at`): a done job's file,
to download before then; a failed job's video, which can be retried until then. A job from
before there were options and expiry (MP3 at V2, kept forever) gets the mail it always got.

Everything taken from the upload or the job (the file name, the reason, notes, the options
in words) is cleaned before it reaches a header, a sentence or a shell command: every
control, format, line and paragraph separator character (Unicode categories Cc, Cf, Zl, Zp,
and unpaired surrogates) becomes a space, so no name, however it got into the job, can make
the headers fail (a U+2028 in a file name once stalled every user's mail, issue 12); what
goes into a command keeps only characters no shell treats specially.

The owner's address goes out with its domain in IDNA (`someone@xn--exmple-cua.com`), which
every mail server takes; a local part that is not ASCII stays as it is and needs a server
with SMTPUTF8 (`smtp.Sender` says so when the server has none). An owner that is not an
address at all is `InvalidAddress`.
"""

from __future__ import annotations

import datetime as dt
import re
import textwrap
import unicodedata
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from urllib.parse import urlsplit

from mp3common.jobs import DONE, Job
from mp3common.options import DEFAULT_FORMAT, ConversionOptions, clock

SENDER_NAME = "mp3converter"
MAX_SUBJECT_NAME = 80
FOOTER = "mp3converter: an automatic message, replies are not read.\n"
_UNSAFE_FOR_SHELL = re.compile(r"[^A-Za-z0-9._-]+")
#: In a double-quoted form field (`-F "start=1:30"`) a colon is safe too.
_UNSAFE_IN_FIELD = re.compile(r"[^A-Za-z0-9.:_-]+")
#: The width of the body's paragraphs, and of a field's name (`Reason:  `).
WIDTH = 72
LABEL = 9
#: English names, whatever the locale (strftime's %a and %b follow it).
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SPACES = re.compile(r"\s+")
#: Unicode categories that never belong in a header or a one-line sentence.
_BREAKING = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


class InvalidAddress(ValueError):
    """The job's owner is not an address a mail can be sent to."""


def one_line(text: object) -> str:
    """`text` as one line of plain words: breaking characters (see above) become spaces,
    runs of white space one space."""
    cleaned = "".join(
        " " if unicodedata.category(char) in _BREAKING else char for char in str(text)
    )
    return _SPACES.sub(" ", cleaned).strip()


def display_name(filename: str | None) -> str:
    """The upload's name, fit for a header or a sentence (no line breaks, bounded)."""
    name = one_line(filename or "") or "your video"
    return name if len(name) <= MAX_SUBJECT_NAME else name[: MAX_SUBJECT_NAME - 1] + "…"


def mail_address(owner: str) -> str:
    """The owner's address as it goes to the mail server: the domain in IDNA (punycode),
    the local part unchanged; InvalidAddress when it cannot be an address."""
    local, at, domain = str(owner).strip().rpartition("@")
    if not at or not local or not domain or one_line(owner) != str(owner).strip() or " " in owner:
        raise InvalidAddress(f"the owner {owner!r} is not an email address")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidAddress(
            f"the domain of {owner!r} is not a valid internationalised domain name ({exc})"
        ) from None
    return f"{local}@{ascii_domain}"


def output_name(filename: str | None, extension: str = "mp3") -> str:
    """`clip.mp4` → `clip.mp3` (`clip.opus` for extension `opus`), with only characters no
    shell treats specially."""
    stem = (filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
    stem = _UNSAFE_FOR_SHELL.sub("_", stem).strip("._-")[:60]
    extension = _UNSAFE_FOR_SHELL.sub("", extension).strip(".") or "mp3"
    return f"{stem or 'output'}.{extension}"


def download_command(
    public_url: str, fid: str, filename: str | None, extension: str = "mp3"
) -> str:
    """The reference README's download call with this job's id filled in (URL quoted for zsh)."""
    return (
        'curl -H "Authorization: Bearer <JWT_TOKEN>" \\\n'
        f'  "{public_url}/download?fid={fid}" \\\n'
        f"  -o {output_name(filename, extension)}"
    )


def retry_command(public_url: str, fid: str) -> str:
    """The call that queues a failed job again (its video is kept until it expires)."""
    return (
        f'curl -X POST -H "Authorization: Bearer <JWT_TOKEN>" \\\n  "{public_url}/jobs/{fid}/retry"'
    )


def option_fields(options: ConversionOptions) -> list[str]:
    """The form fields that ask for `options` again (`format=opus`, `start=1:30`): those
    the owner chose, so that uploading with them gives what they asked for before."""
    chosen = {
        "format": options.format if options.format != DEFAULT_FORMAT else None,
        "quality": options.quality if options.quality_chosen else None,
        "start": clock(options.start) if options.start is not None else None,
        "end": clock(options.end) if options.end is not None else None,
        "normalize": f"{options.normalize:g}" if options.normalize is not None else None,
        "track": options.track,
        "channels": options.channels,
    }
    return [
        f"{name}={_UNSAFE_IN_FIELD.sub('_', str(value))}"
        for name, value in chosen.items()
        if value is not None
    ]


def upload_command(public_url: str, options: ConversionOptions) -> str:
    """The reference README's upload call, with the form fields of the options asked for."""
    fields = ['-F "file=@video.mp4"', *(f'-F "{field}"' for field in option_fields(options))]
    if len(fields) == 1:  # the reference's call, as it always was
        lines = [f"{fields[0]} {public_url}/upload"]
    else:
        lines = [" ".join(fields[at : at + 3]) for at in range(0, len(fields), 3)]
        lines.append(f"{public_url}/upload")
    return 'curl -X POST -H "Authorization: Bearer <JWT_TOKEN>" \\\n' + " \\\n".join(
        f"    {line}" for line in lines
    )


def _login_command(public_url: str, username: str) -> str:
    return f'curl -X POST -u "{username}:<PASSWORD>" \\\n  {public_url}/login'


def _as_utc(moment: dt.datetime) -> dt.datetime:
    # pymongo hands back naive datetimes, in UTC, unless told otherwise.
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def moment_in_words(moment: dt.datetime) -> str:
    """`Mon 7 Dec 2026, 14:05 UTC`: the same for every reader, wherever they are (to the
    minute, cut down: a file is never gone before the time it says)."""
    moment = _as_utc(moment)
    weekday, month = _WEEKDAYS[moment.weekday()], _MONTHS[moment.month - 1]
    return f"{weekday} {moment.day} {month} {moment.year}, {moment:%H:%M} UTC"


def time_left_in_words(left: dt.timedelta) -> str:
    """`in 7 days`, `in 5 hours`, `in 1 minute`: roughly, beside the exact time."""
    minutes = left.total_seconds() / 60
    if minutes >= 36 * 60:
        count, unit = round(minutes / (24 * 60)), "day"
    elif minutes >= 90:
        count, unit = round(minutes / 60), "hour"
    elif minutes >= 1:
        count, unit = round(minutes), "minute"
    else:
        return "in less than a minute"
    return f"in {count} {unit}{'' if count == 1 else 's'}"


def _expiry(job: Job, now: dt.datetime) -> tuple[str, dt.timedelta] | None:
    """When what is kept of the job is deleted, in words, and how long that is from now;
    None for a job from before expiry (kept until deleted)."""
    if job.expires_at is None:
        return None
    return _unbroken(moment_in_words(job.expires_at)), _as_utc(job.expires_at) - now


def _unbroken(phrase: str) -> str:
    """`phrase` kept on one line by `_paragraph` (a date, `in 7 days`)."""
    return phrase.replace(" ", "\N{NO-BREAK SPACE}")


def _paragraph(text: str) -> str:
    return textwrap.fill(text, width=WIDTH).replace("\N{NO-BREAK SPACE}", " ")


def _field(name: str, value: str) -> str:
    """`Reason:  <value>`, the value wrapped under itself."""
    return textwrap.fill(
        one_line(value),
        width=WIDTH,
        initial_indent=f"{name:<{LABEL}}",
        subsequent_indent=" " * LABEL,
        break_on_hyphens=False,
    )


def _fields(job: Job, *, reason: bool = False) -> str:
    """The file id, the reason (failed), the options in words and the notes, one a line."""
    lines = [_field("File id:", str(job.id))]
    if reason:
        lines.append(_field("Reason:", job.reason or "the converter did not say why"))
    lines.append(_field("Options:", job.options.summary(copied=job.copied)))
    lines += [_field("Note:", note) for note in job.notes if one_line(note)]
    return "\n".join(lines)


def _warning(job: Job) -> str:
    """The job's warning as a paragraph of its own (e.g. that the file looks cut off)."""
    if not job.warning:
        return ""
    return "\n" + _paragraph(f"Please note: {one_line(job.warning)}.") + "\n"


def _download_by(job: Job, now: dt.datetime) -> str:
    """When the output is deleted, as a paragraph; none for a job kept forever."""
    expiry = _expiry(job, now)
    if expiry is None:
        return ""
    when, left = expiry
    if left > dt.timedelta(0):
        text = (
            f"It will be deleted on {when} ({_unbroken(time_left_in_words(left))}); download it "
            "before then."
        )
    else:
        text = (
            f"It was to be deleted on {when}, before this mail could go; if it is gone, "
            "upload the video again."
        )
    return _paragraph(text) + "\n\n"


def _done_body(job: Job, public_url: str, now: dt.datetime) -> str:
    fid = str(job.id)
    output = job.options.output
    download = download_command(public_url, fid, job.filename, output.extension)
    return f"""Hello,

your video "{display_name(job.filename)}" has been converted to {output.label}.
{_warning(job)}
{_fields(job)}

Download it with:

{textwrap.indent(download, "    ")}

where <JWT_TOKEN> is what logging in answers:

{textwrap.indent(_login_command(public_url, job.owner), "    ")}

{_download_by(job, now)}{FOOTER}"""


def _what_to_do(job: Job, public_url: str, now: dt.datetime) -> str:
    """Retry while the video is kept (after a passing failure), else check the file and
    upload it again; a job from before videos were kept can only be uploaded again."""
    check = (
        "check that the file plays on your computer and has a sound track (a silent "
        "video has nothing to convert), then upload it again:"
    )
    upload = textwrap.indent(upload_command(public_url, job.options), "    ")
    expiry = _expiry(job, now)
    if expiry is None:
        return f"{_paragraph(f'What to do: {check}')}\n\n{upload}"
    when, left = expiry
    if left <= dt.timedelta(0):
        kept = f"Its video was kept until {when}, so it cannot be retried now."
        return f"{_paragraph(f'{kept} What to do: {check}')}\n\n{upload}"
    retry = _paragraph(
        f"Your video is kept until {when} ({_unbroken(time_left_in_words(left))}), then "
        "deleted. Until then you can retry the conversion without uploading it again, "
        "which is what helps when the reason was a passing one (an outage, a time-out):"
    )
    command = textwrap.indent(retry_command(public_url, str(job.id)), "    ")
    otherwise = _paragraph(f"Otherwise {check}")
    return "\n\n".join((retry, command, otherwise, upload))


def _failed_body(job: Job, public_url: str, now: dt.datetime) -> str:
    return f"""Hello,

we could not convert your video "{display_name(job.filename)}" to {job.options.output.label}.

{_fields(job, reason=True)}

{_what_to_do(job, public_url, now)}

If it keeps failing, tell your administrator the file id above.

{FOOTER}"""


def _subject(job: Job, name: str) -> str:
    """The reference's subjects for an MP3; another format is named (`converted to Opus`)."""
    output = job.options.output
    if job.state == DONE:
        if output.name == DEFAULT_FORMAT:
            return f"Your MP3 is ready: {name}"
        return f"Your audio is ready, converted to {output.short_label}: {name}"
    if output.name == DEFAULT_FORMAT:
        return f"We could not convert {name}"
    return f"We could not convert {name} to {output.short_label}"


def compose(
    job: Job, *, sender: str, public_url: str, now: dt.datetime | None = None
) -> EmailMessage:
    """The mail for a finished job (converted or failed), addressed to its owner; `now`
    (UTC, default the current time) dates it and says how long its files are kept.

    The Message-ID is derived from the job, so should a crash ever make us send twice, the
    copies carry the same id and mail systems that deduplicate by it show one. A retried
    job's next mail has an id of its own (`retries`), or it would be hidden as a copy.
    """
    now = _as_utc(now or dt.datetime.now(dt.UTC))
    fid = str(job.id)
    message = EmailMessage()
    message["From"] = formataddr((SENDER_NAME, sender))
    message["To"] = mail_address(job.owner)
    message["Date"] = formatdate(now.timestamp(), usegmt=True)
    domain = urlsplit(public_url).hostname or "mp3converter"
    retried = f"-retry{job.retries}" if job.retries else ""
    message["Message-ID"] = f"<job-{fid}-{job.state}{retried}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Mp3converter-Fid"] = fid
    message["Subject"] = _subject(job, display_name(job.filename))
    if job.state == DONE:
        message.set_content(_done_body(job, public_url, now))
    else:
        message.set_content(_failed_body(job, public_url, now))
    return message
