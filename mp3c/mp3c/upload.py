"""A resumable upload of one file (tus 1.0, with tuspy), shown as a progress bar.

Each PATCH carries at most `CHUNK_BYTES` (8 MiB): below any proxy's per-request limit
(gateway/manifests/ingress.yaml). A request that fails for the network's or the server's
sake (no answer, 5xx, 409 wrong offset, 423 busy) is tried again after a pause, from the
offset the server reports (HEAD), up to `RETRIES` times in a row; the upload's URL is kept
in mp3c's config until it completes, so a new `mp3c convert` of the same file resumes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import requests
from tqdm import tqdm
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from .api import Api, ApiError, unreachable
from .config import Config

CHUNK_BYTES = 8 * 1024 * 1024
RETRIES = 8
#: Seconds between tries: 1, 2, 4 … at most this.
MAX_PAUSE_SECONDS = 30
TUS_HEADERS = {"Tus-Resumable": "1.0.0"}


def fingerprint(path: Path, url: str, options: dict[str, str]) -> str:
    """The same file (path, size, time), server and options: the same upload."""
    stat = path.stat()
    text = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, url, options])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _error(exc: TusCommunicationError | TusUploadFailed, url: str) -> ApiError:
    status = getattr(exc, "status_code", None)
    if status is None:
        return unreachable(url, exc)
    return ApiError.from_response(status, getattr(exc, "response_content", None))


def _transient(error: ApiError) -> bool:
    return error.status == 0 or error.status >= 500 or error.status in (409, 423)


def _offset(api: Api, upload_url: str) -> int | None:
    """Where the server says the upload ends; None when it is gone (expired, removed)."""
    try:
        response = requests.head(
            upload_url, headers={**TUS_HEADERS, **api.auth_headers}, timeout=(10, 30)
        )
    except requests.RequestException as exc:
        raise unreachable(api.url, exc) from None
    if response.status_code == 404:
        return None
    if response.status_code >= 400 or "Upload-Offset" not in response.headers:
        raise ApiError.from_response(response.status_code, response.content)
    return int(response.headers["Upload-Offset"])


def upload(
    api: Api, path: Path, options: dict[str, str], config: Config, *, quiet: bool = False
) -> dict[str, Any]:
    """Send `path` with `options` (resuming an earlier try of it); the job it became."""
    size = path.stat().st_size
    key = fingerprint(path, api.url, options)
    client = TusClient(f"{api.url}/uploads", headers=api.auth_headers)
    upload_url = config.upload_url(key)
    offset = _offset(api, upload_url) if upload_url else None
    if offset is None:
        upload_url = None
    metadata = {"filename": path.name, **options}
    uploader = client.uploader(
        file_path=str(path),
        chunk_size=CHUNK_BYTES,
        metadata=metadata,
        metadata_encoding="utf-8",
        url=upload_url,
    )
    if upload_url is None:
        try:
            upload_url = uploader.create_url()
        except (TusCommunicationError, TusUploadFailed) as exc:
            raise _error(exc, api.url) from None
        uploader.set_url(upload_url)
        uploader.offset = 0
        config.remember_upload(key, upload_url)
    else:
        uploader.offset = offset
    bar = tqdm(
        total=size,
        initial=uploader.offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"upload {path.name}",
        disable=quiet,
        leave=True,
    )
    failures = 0
    answer: bytes | None = None
    with bar:
        while uploader.offset < size or answer is None:
            try:
                uploader.upload_chunk()
                failures = 0
                answer = uploader.request.response_content
                bar.update(uploader.offset - bar.n)
            except (TusCommunicationError, TusUploadFailed) as exc:
                error = _error(exc, api.url)
                failures += 1
                if not _transient(error) or failures > RETRIES:
                    if not _transient(error):
                        config.forget_upload(key)
                    raise error from None
                pause = min(2 ** (failures - 1), MAX_PAUSE_SECONDS)
                bar.write(f"{path.name}: {error.message}; trying again in {pause} s")
                time.sleep(pause)
                try:
                    resumed = _offset(api, upload_url)
                except ApiError as again:
                    if _transient(again):
                        continue
                    raise
                if resumed is None:
                    config.forget_upload(key)
                    raise ApiError(
                        "the upload expired on the server; send the file again", status=410
                    ) from None
                uploader.offset = resumed
                bar.update(resumed - bar.n)
    config.forget_upload(key)
    try:
        return json.loads(answer or b"{}")
    except ValueError:
        fid = upload_url.rsplit("/", 1)[-1]
        return {"fid": fid}


def encode_metadata(metadata: dict[str, str]) -> str:
    """Upload-Metadata as tus writes it (for the README's curl example and tests)."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items()
    )
