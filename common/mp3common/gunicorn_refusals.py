"""gunicorn's own refusals in the API's JSON shape instead of its HTML page.

gunicorn answers some requests before the app sees them: a request line over
`limit_request_line` (414), headers over `limit_request_field_size` or
`limit_request_fields` (431), a malformed request line or header (400), and a few rarer
ones. Every worker class hands those to `Worker.handle_error`, which picks the status and
calls `gunicorn.util.write_error(sock, status, reason, message)` to write an HTML page.
gunicorn has no setting or hook for that page, so `install()` puts a function of the same
signature in its place that writes `{"error", "message"}` JSON with the same status and
the same `Connection: close`. The status codes and the log lines stay gunicorn's.

mp3common.gunicorn_conf installs it for every HTTP service (the gateway and auth).
tests/test_gateway_faults.py and tests/test_auth_system.py send such requests on a raw
socket to the gunicorn the stack runs; a gunicorn upgrade that renamed or stopped calling
`write_error` fails there.
"""

from __future__ import annotations

import json

from gunicorn import util

#: The code and message of each status gunicorn refuses with; others get their reason.
_REFUSALS = {
    400: ("bad_request", "The request line or a header is malformed."),
    403: ("forbidden", "The request is forbidden."),
    414: (
        "uri_too_long",
        "The request line is too long; send a shorter path and query.",
    ),
    417: ("expectation_failed", "The Expect header cannot be met."),
    431: (
        "request_header_fields_too_large",
        "A header, or all of them, are too large; send smaller or fewer headers.",
    ),
    500: ("internal_error", "Something went wrong on our side; try again later."),
    501: ("not_implemented", "That transfer coding is not supported."),
}


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error's signature, a JSON body. gunicorn's `mesg` may quote the
    client's bytes back; it is left out, as the JSON handlers of the app do."""
    error, message = _REFUSALS.get(status_int, (reason.lower().replace(" ", "_"), f"{reason}."))
    body = json.dumps({"error": error, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    """Have gunicorn write its refusals as JSON (in this process and those it forks)."""
    util.write_error = write_json_error
