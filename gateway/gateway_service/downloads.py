"""An MP3 streamed out of GridFS, with the headers a browser or curl needs (and Range)."""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath
from urllib.parse import quote

from flask import Request, Response
from gridfs.grid_file import GridOut
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wsgi import FileWrapper

from mp3common.http import ApiError
from mp3common.jobs import CHUNK_SIZE_BYTES


def mp3_name(original: str | None) -> str:
    """The upload's name with .mp3 for its extension: clip.mov → clip.mp3."""
    stem = PurePosixPath(original or "").stem.strip() or "audio"
    return f"{stem}.mp3"


def _disposition(name: str) -> dict[str, str]:
    """Content-Disposition's parameters, with an ASCII fallback for non-ASCII names."""
    try:
        name.encode("ascii")
        return {"filename": name}
    except UnicodeEncodeError:
        simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        if not simple.removesuffix(".mp3").strip(" ."):  # 日本語.mp3 → ".mp3", a dotfile
            simple = "audio.mp3"
        return {"filename": simple, "filename*": f"UTF-8''{quote(name, safe='')}"}


def mp3_response(request: Request, grid_out: GridOut, download_name: str) -> Response:
    """Stream `grid_out`; Werkzeug answers Range (206/416) and conditional requests.

    Werkzeug's own FileWrapper is used, not the server's (gunicorn's cannot seek), so a
    range far into the file is a seek to the right GridFS chunk, not a read from the start.
    """
    response = Response(
        FileWrapper(grid_out, CHUNK_SIZE_BYTES), mimetype="audio/mpeg", direct_passthrough=True
    )
    response.content_length = grid_out.length
    response.headers.set("Content-Disposition", "attachment", **_disposition(download_name))
    response.set_etag(str(grid_out._id))
    response.last_modified = grid_out.upload_date
    response.cache_control.private = True
    try:
        return response.make_conditional(
            request.environ, accept_ranges=True, complete_length=grid_out.length
        )
    except RequestedRangeNotSatisfiable:
        grid_out.close()
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"The range is outside the file, which has {grid_out.length} bytes.",
            headers={"Content-Range": f"bytes */{grid_out.length}"},
        ) from None
