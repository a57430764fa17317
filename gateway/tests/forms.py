"""Multipart bodies written by hand: parts in the order a test needs (Werkzeug's test
client always sends the plain fields before the files), and bodies that are broken."""

from __future__ import annotations

BOUNDARY = "xyz"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(boundary: str, *parts: bytes, end: bool = True) -> bytes:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + boundary.encode() + b"--\r\n" if end else b"")


def file_part(content: bytes, name: str = "file", filename: str = "clip.mp4") -> bytes:
    return (
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode() + content


def field_part(name: str, value: str) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()


def form(*parts: bytes) -> bytes:
    """A whole multipart body of `parts`, in that order, with BOUNDARY."""
    return multipart(BOUNDARY, *parts)


def post_raw(client, user, body: bytes, content_type: str = CONTENT_TYPE, path: str = "/upload"):
    return client.post(path, headers={**user.headers, "Content-Type": content_type}, data=body)


def upload_with_options(
    client,
    user,
    content: bytes,
    *,
    before: dict[str, str] | None = None,
    after: dict[str, str] | None = None,
    filename: str = "clip.mp4",
):
    """POST /upload with the option fields `before` the file part and `after` it."""
    fields_before = [field_part(name, value) for name, value in (before or {}).items()]
    fields_after = [field_part(name, value) for name, value in (after or {}).items()]
    body = form(*fields_before, file_part(content, filename=filename), *fields_after)
    return post_raw(client, user, body)
