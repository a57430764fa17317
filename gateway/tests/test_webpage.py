"""The web page as the gateway serves it: a strict CSP on every file, nothing inline, and
the vendored tus-js-client exactly the one gateway/web-build/vendor.sh recorded."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gateway_service.webpage import CONTENT_SECURITY_POLICY

WEB = Path(__file__).resolve().parents[1] / "gateway_service" / "web"
BUILD = Path(__file__).resolve().parents[1] / "web-build"


@pytest.mark.parametrize(
    ("path", "mimetype"),
    [
        ("/", "text/html"),
        ("/web/app.js", "text/javascript"),
        ("/web/app.css", "text/css"),
        ("/web/vendor/tus.min.js", "text/javascript"),
    ],
)
def test_every_file_of_the_page_comes_with_the_strict_policy(client, path, mimetype):
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.mimetype == mimetype
    assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_the_policy_allows_this_origin_only_and_nothing_inline():
    directives = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY


class _Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, styles, handlers, URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "style" or (tag == "script" and "src" not in attributes):
            self.found.append(f"inline <{tag}>")
        for name, value in attributes.items():
            if name.startswith("on") or name == "style":
                self.found.append(f"{tag} {name}=")
            if name in ("src", "href") and value and re.match(r"^(https?:)?//", value):
                self.found.append(f"{tag} {name}={value}")


def test_the_page_has_nothing_inline_and_nothing_from_elsewhere():
    parser = _Inline()
    parser.feed((WEB / "index.html").read_text())
    assert parser.found == []
    assert "innerHTML" not in (WEB / "app.js").read_text()  # text only: no markup from data


def test_the_vendored_client_is_the_one_the_lock_file_gave():
    recorded = dict(
        reversed(line.split()) for line in (BUILD / "vendor.sha256").read_text().splitlines()
    )
    for name, digest in recorded.items():
        assert hashlib.sha256((WEB / "vendor" / name).read_bytes()).hexdigest() == digest
    lock = (BUILD / "package-lock.json").read_text()
    assert '"node_modules/tus-js-client"' in lock and '"integrity": "sha512-' in lock
