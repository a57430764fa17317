"""An output (MP3, Opus, …) streamed out of GridFS, with the headers a browser or curl
needs (and Range); its name and media type are its format's (mp3common.options)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import PurePosixPath
from urllib.parse import quote

from anyascii import anyascii
from flask import Request, Response
from gridfs.grid_file import GridOut
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import parse_date, parse_etags, parse_range_header
from werkzeug.wsgi import FileWrapper

from mp3common.http import ApiError
from mp3common.jobs import CHUNK_SIZE_BYTES
from mp3common.options import Format


def output_name(original: str | None, output: Format) -> str:
    """The upload's name with the format's extension: clip.mov → clip.mp3, clip.opus."""
    stem = PurePosixPath(original or "").stem.strip() or "audio"
    return output.output_name(stem)


def _disposition(name: str) -> dict[str, str]:
    """Content-Disposition's parameters: the name as is when it is ASCII, else the UTF-8
    name (`filename*`, RFC 6266) and a transliterated ASCII one for old clients
    ("лекция 1.mp3" → "lektsiya 1.mp3"; "audio.mp3" if nothing is left)."""
    try:
        name.encode("ascii")
        return {"filename": name}
    except UnicodeEncodeError:
        stem, _, extension = name.rpartition(".")
        stem = _UNSAFE_IN_ASCII_NAME.sub(" ", anyascii(stem))
        stem = " ".join(stem.split()).strip(" .") or "audio"  # never a hidden ".mp3"
        return {
            "filename": f"{stem}.{extension}",
            "filename*": f"UTF-8''{quote(name, safe='')}",
        }


#: What the ASCII fallback name keeps: letters, digits, spaces and . _ - ( ) only.
_UNSAFE_IN_ASCII_NAME = re.compile(r"[^A-Za-z0-9 ._()-]+")


def output_response(
    request: Request, grid_out: GridOut, download_name: str, mime_type: str
) -> Response:
    """Stream `grid_out`; Werkzeug answers Range (206/416) and conditional requests.

    Werkzeug's own FileWrapper is used, not the server's (gunicorn's cannot seek), so a
    range far into the file is a seek to the right GridFS chunk, not a read from the start.
    """
    response = Response(
        FileWrapper(grid_out, CHUNK_SIZE_BYTES), mimetype=mime_type, direct_passthrough=True
    )
    response.content_length = grid_out.length
    response.headers.set("Content-Disposition", "attachment", **_disposition(download_name))
    response.set_etag(str(grid_out._id))
    response.last_modified = grid_out.upload_date
    response.cache_control.private = True
    if _precondition_failed(request, str(grid_out._id), grid_out.upload_date):
        grid_out.close()
        raise ApiError(
            412,
            "precondition_failed",
            "The file is not the one If-Match or If-Unmodified-Since names; download it "
            "again without them.",
            headers={"ETag": response.headers["ETag"]},
        )
    # Werkzeug judged If-Match itself, wrongly (`*` was a 412, and a 412 carried the whole
    # MP3 as its body): the preconditions are ours, the rest (304, Range) is Werkzeug's.
    ignored = {"HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE"}
    if not _one_byte_range(request.headers.get("Range")):
        # RFC 9110: a Range that cannot be read, of another unit, or of several ranges
        # (which this server does not serve) is ignored, and the whole file sent;
        # Werkzeug answered 416 to it, as to a range outside the file.
        ignored |= {"HTTP_RANGE", "HTTP_IF_RANGE"}
    environ = {name: value for name, value in request.environ.items() if name not in ignored}
    try:
        return response.make_conditional(
            environ, accept_ranges=True, complete_length=grid_out.length
        )
    except RequestedRangeNotSatisfiable:
        grid_out.close()
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"The range is outside the file, which has {grid_out.length} bytes.",
            headers={"Content-Range": f"bytes */{grid_out.length}"},
        ) from None


def _precondition_failed(request: Request, etag: str, modified: dt.datetime | None) -> bool:
    """RFC 9110's If-Match (the file's ETag, or `*`), else If-Unmodified-Since, fails."""
    if_match = request.headers.get("If-Match")
    if if_match is not None:
        return etag not in parse_etags(if_match)
    since = parse_date(request.headers.get("If-Unmodified-Since"))
    if since is None or modified is None:
        return False
    if modified.tzinfo is None:  # pymongo hands back naive UTC
        modified = modified.replace(tzinfo=dt.UTC)
    return modified.replace(microsecond=0) > since


def _one_byte_range(header: str | None) -> bool:
    """True when `header` is one range of bytes (satisfiable or not: Werkzeug judges that)."""
    if header is None:
        return False
    parsed = parse_range_header(header)
    return parsed is not None and parsed.units == "bytes" and len(parsed.ranges) == 1
