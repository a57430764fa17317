"""Upload-complete → mail-in-sink for a 60 s clip, split into raw ffmpeg time + overhead.

The clip goes through the running stack exactly as in the whole-flow test (the README's
curl commands); the clock starts when the upload's answer arrived and stops when the SMTP
sink wrote the mail (the maildir file's mtime). The raw ffmpeg figure is the converter's
own command line run here on the same file; everything else (queues, GridFS in and out,
job updates, SMTP) is overhead. Target: overhead ≤ 0.5 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

from reference_flow import (  # noqa: E402
    FFMPEG,
    MAIL_DIR,
    log_in,
    make_video,
    upload,
)

from mp3testing.users import create_user  # noqa: E402

CLIP_SECONDS = 60
RUNS = 3
TARGET_OVERHEAD_SECONDS = 0.5


def converter_ffmpeg(video: Path, output: Path) -> float:
    """The converter's command (converter_service.ffmpeg_args.ffmpeg_command, V2)."""
    started = time.perf_counter()
    subprocess.run(
        [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-i", str(video)]
        + ["-map", "0:a:0", "-vn", "-sn", "-dn", "-c:a", "libmp3lame", "-q:a", "2"]
        + ["-f", "mp3", "-y", str(output)],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def mail_arrival(address: str, seen: set[Path], timeout: float = 120.0) -> float:
    """When the sink wrote the first new mail to `address` (wall clock, its file's mtime)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in MAIL_DIR.glob("new/*"):
            if path in seen:
                continue
            seen.add(path)
            head = path.read_bytes().split(b"\n\n", 1)[0]
            if f"\nTo: {address}\n".encode() in b"\n" + head.replace(b"\r\n", b"\n") + b"\n":
                return path.stat().st_mtime
        time.sleep(0.005)
    raise TimeoutError(f"no mail to {address} within {timeout} s")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        video = make_video(work / "video.mp4", CLIP_SECONDS)
        size_mb = video.stat().st_size / 1e6
        raw = [converter_ffmpeg(video, work / "raw.mp3") for _ in range(RUNS)]
        address, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
        create_user(address, password)
        token = log_in(address, password, work)
        seen = set(MAIL_DIR.glob("new/*"))
        uploads, totals = [], []
        for _ in range(RUNS):
            started = time.time()
            upload(token, video)
            uploaded = time.time()
            totals.append(mail_arrival(address, seen) - uploaded)
            uploads.append(uploaded - started)
    ffmpeg_s, total_s = statistics.median(raw), statistics.median(totals)
    overhead = total_s - ffmpeg_s
    verdict = "ok" if overhead <= TARGET_OVERHEAD_SECONDS else "OVER TARGET"
    rows = [
        (f"upload ({CLIP_SECONDS} s clip, {size_mb:.1f} MB, curl)", statistics.median(uploads), ""),
        ("raw ffmpeg (the converter's command)", ffmpeg_s, ""),
        ("upload complete -> mail in sink", total_s, f"runs: {_fmt(totals)}"),
        (
            "overhead (that - raw ffmpeg)",
            overhead,
            f"target <= {TARGET_OVERHEAD_SECONDS} s: {verdict}",
        ),
    ]
    sys.stdout.write(f"{'flow latency, median of ' + str(RUNS):<44} {'seconds':>8}\n")
    for name, seconds, note in rows:
        sys.stdout.write(f"{name:<44} {seconds:8.3f}  {note}\n".rstrip() + "\n")


def _fmt(values: list[float]) -> str:
    return " ".join(f"{value:.3f}" for value in values)


if __name__ == "__main__":
    main()
