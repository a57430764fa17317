"""The web page at `/`, for people who don't use curl: static files, no CDN, strict CSP.

The page (`web/`: index.html, app.js, app.css and the vendored tus-js-client, see
gateway/web-build/) uses only the documented API: /login, /formats, the resumable
/uploads, /jobs, /download. Everything it loads comes from this origin, and the
Content-Security-Policy says so: no inline script or style, no other origin, no frames.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("web", __name__, static_folder="web", static_url_path="/web")

#: Self only: scripts and styles from files of this origin (none inline), requests to this
#: origin, downloads handed to the browser as blob: URLs, nothing framed or framing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "media-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


@bp.get("/")
def index():
    return bp.send_static_file("index.html")


@bp.after_request
def _page_headers(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-cache"
    return response
