"""The mail a user gets for a finished job: what happened, the file id, what to run next.

Plain text, because the body is mostly commands to copy. Everything taken from the upload
(the file name) is cleaned before it reaches a header or a shell command: every control,
format, line and paragraph separator character (Unicode categories Cc, Cf, Zl, Zp, and
unpaired surrogates) becomes a space, so no name, however it got into the job, can make
the headers fail (a U+2028 in a file name once stalled every user's mail, issue 12).

The owner's address goes out with its domain in IDNA (`someone@xn--exmple-cua.com`), which
every mail server takes; a local part that is not ASCII stays as it is and needs a server
with SMTPUTF8 (`smtp.Sender` says so when the server has none). An owner that is not an
address at all is `InvalidAddress`.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from urllib.parse import urlsplit

from mp3common.jobs import DONE, Job

SENDER_NAME = "mp3converter"
MAX_SUBJECT_NAME = 80
FOOTER = "mp3converter: an automatic message, replies are not read.\n"
_UNSAFE_FOR_SHELL = re.compile(r"[^A-Za-z0-9._-]+")
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


def output_name(filename: str | None) -> str:
    """`clip.mp4` → `clip.mp3`, with only characters no shell treats specially."""
    stem = (filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
    stem = _UNSAFE_FOR_SHELL.sub("_", stem).strip("._-")[:60]
    return f"{stem or 'output'}.mp3"


def download_command(public_url: str, fid: str, filename: str | None) -> str:
    """The reference README's download call with this job's id filled in (URL quoted for zsh)."""
    return (
        'curl -H "Authorization: Bearer <JWT_TOKEN>" \\\n'
        f'  "{public_url}/download?fid={fid}" \\\n'
        f"  -o {output_name(filename)}"
    )


def _login_command(public_url: str, username: str) -> str:
    return f'curl -X POST -u "{username}:<PASSWORD>" \\\n  {public_url}/login'


def _warning(job: Job) -> str:
    """The job's warning as a paragraph of its own (e.g. that the file looks cut off)."""
    if not job.warning:
        return ""
    text = one_line(job.warning)
    return "\n" + textwrap.fill(f"Please note: {text}.", width=72) + "\n"


def _done_body(job: Job, public_url: str) -> str:
    fid = str(job.id)
    download = textwrap.indent(download_command(public_url, fid, job.filename), "    ")
    return f"""Hello,

your video "{display_name(job.filename)}" has been converted to MP3.
{_warning(job)}
File id: {fid}

Download it with:

{download}

where <JWT_TOKEN> is what logging in answers:

{textwrap.indent(_login_command(public_url, job.owner), "    ")}

{FOOTER}"""


def _failed_body(job: Job, public_url: str) -> str:
    fid = str(job.id)
    reason = one_line(job.reason or "the converter did not say why")
    return f"""Hello,

we could not convert your video "{display_name(job.filename)}" to MP3.

File id: {fid}
Reason:  {reason}

What to do: check that the file plays on your computer and has a sound
track (a silent video has nothing to convert), then upload it again:

    curl -X POST -H "Authorization: Bearer <JWT_TOKEN>" \\
        -F "file=@video.mp4" {public_url}/upload

If it keeps failing, tell your administrator the file id above.

{FOOTER}"""


def compose(job: Job, *, sender: str, public_url: str) -> EmailMessage:
    """The mail for a finished job (converted or failed), addressed to its owner.

    The Message-ID is derived from the job, so should a crash ever make us send twice, the
    copies carry the same id and mail systems that deduplicate by it show one.
    """
    fid = str(job.id)
    name = display_name(job.filename)
    message = EmailMessage()
    message["From"] = formataddr((SENDER_NAME, sender))
    message["To"] = mail_address(job.owner)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = urlsplit(public_url).hostname or "mp3converter"
    message["Message-ID"] = f"<job-{fid}-{job.state}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Mp3converter-Fid"] = fid
    if job.state == DONE:
        message["Subject"] = f"Your MP3 is ready: {name}"
        message.set_content(_done_body(job, public_url))
    else:
        message["Subject"] = f"We could not convert {name}"
        message.set_content(_failed_body(job, public_url))
    return message
