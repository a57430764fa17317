"""Upload throughput and memory of the gateway, against bare pymongo GridFS on the same server.

A gateway of its own is started for this (the same gunicorn.conf.py, one worker, a queue
and database of its own, so the running converter never sees these files). Each size is
uploaded with curl through the gateway, and the same file is stored with pymongo's
GridFSBucket.upload_from_stream (same 1 MiB chunks) to the same MongoDB server. Peak RSS
is the worker's VmHWM: the worker is new, so its peak is this run's. Targets: peak RSS
≤ 150 MB at 1 GiB, throughput ≥ 0.6 x bare pymongo.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from gridfs import GridFSBucket
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from mp3testing.media import make_clip  # noqa: E402
from mp3testing.users import create_user  # noqa: E402

MiB = 1024 * 1024
SIZES = (256 * MiB, 1024 * MiB)
TARGET_RSS_MB = 150
TARGET_RATIO = 0.6
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
AUTH_URL = f"http://{os.environ.get('AUTH_SVC_ADDRESS', '127.0.0.1:5000')}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_file(path: Path, size: int) -> None:
    """A real MP4's first bytes (so the gateway accepts it), then random bytes up to size."""
    clip = make_clip(path.with_suffix(".head.mp4"), 1, size="64x48", rate=10, audio=False)
    with path.open("wb") as out:
        out.write(clip.read_bytes())
        while out.tell() < size:
            out.write(os.urandom(min(8 * MiB, size - out.tell())))
    clip.unlink()


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(part) for part in text.split()]


class Gateway:
    """A one-worker gateway on a free port, with its own database and queue."""

    def __init__(self, database: str, queue: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "MONGODB_DB": database,
            "VIDEO_QUEUE": queue,
            "GATEWAY_WORKERS": "1",
            "LOG_LEVEL": "warning",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.pop("METRICS_PORT", None)
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{self.port}"]
            + ["--access-logfile", "/dev/null", "server:app"],
            cwd=ROOT / "gateway",
            env=env,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise SystemExit("the bench gateway did not become ready")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker(self) -> int:
        return children(self.process.pid)[0]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def upload_through_gateway(gateway: Gateway, token: str, path: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"]
        + ["-H", f"Authorization: Bearer {token}", "-F", f"file=@{path}"]
        + [f"{gateway.url}/upload"],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    if done.stdout != "202":
        raise SystemExit(f"the upload answered {done.stdout}")
    return seconds


def upload_bare(database, path: Path) -> float:
    bucket = GridFSBucket(database, "bench_bare", chunk_size_bytes=MiB)
    started = time.perf_counter()
    with path.open("rb") as source:
        bucket.upload_from_stream(path.name, source)
    return time.perf_counter() - started


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_gib = status_kb_total() / MiB
    python = platform.python_version()
    return f"{cpu}, {os.cpu_count()} cores, {memory_gib:.0f} GiB RAM, Python {python}"


def status_kb_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    suffix = uuid.uuid4().hex[:8]
    database_name, queue = f"mp3bench_{suffix}", f"bench.gateway.{suffix}"
    client = MongoClient(MONGODB_URI)
    database = client[database_name]
    email, password = f"bench-{suffix}@example.com", f"pw-{suffix}"
    create_user(email, password)
    token = requests.post(f"{AUTH_URL}/login", auth=(email, password), timeout=10).text
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in SIZES:
            path = Path(folder) / f"upload-{size // MiB}.mp4"
            make_file(path, size)
            gateway = Gateway(database_name, queue)
            try:
                idle_kb = status_kb(gateway.worker(), "VmRSS")
                through_gateway = upload_through_gateway(gateway, token, path)
                peak_kb = status_kb(gateway.worker(), "VmHWM")
            finally:
                gateway.stop()
            client.drop_database(database_name)  # the stand-in keeps everything in memory
            bare = upload_bare(database, path)
            client.drop_database(database_name)
            path.unlink()
            rows.append((size, through_gateway, bare, idle_kb, peak_kb))
    _delete_queue(queue)

    out = sys.stdout.write
    out(f"machine: {machine()}; MongoDB: {MONGODB_URI}\n")
    out(
        f"{'file':>8} | {'gateway s':>9} | {'MB/s':>6} | {'pymongo s':>9} | {'MB/s':>6} | "
        f"{'ratio':>5} | {'worker RSS idle':>15} | {'peak RSS':>8}\n"
    )
    ok = True
    for size, through_gateway, bare, idle_kb, peak_kb in rows:
        ratio = bare / through_gateway
        out(
            f"{size // MiB:>5} MiB | {through_gateway:>9.1f} | "
            f"{size / 1e6 / through_gateway:>6.0f} | {bare:>9.1f} | {size / 1e6 / bare:>6.0f} | "
            f"{ratio:>5.2f} | {idle_kb / 1024:>12.0f} MB | {peak_kb / 1024:>5.0f} MB\n"
        )
        ok = ok and ratio >= TARGET_RATIO and peak_kb / 1024 <= TARGET_RSS_MB
    out(
        f"targets: peak RSS <= {TARGET_RSS_MB} MB, throughput >= {TARGET_RATIO} x pymongo: "
        + ("met" if ok else "NOT MET")
        + "\n"
    )
    return 0 if ok else 1


def _delete_queue(queue: str) -> None:
    import pika

    url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for name in (queue, f"{queue}.dlq"):
        channel.queue_delete(name)
    connection.close()


if __name__ == "__main__":
    sys.exit(main())
