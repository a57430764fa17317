"""Slow clients against the gateway: do /healthz, a login and a 1 MB upload still answer?

Two gateways of its own are started in turn, each with 2 workers, a database and a queue
of its own (the running converters never see these files) and login limits high enough
for the probe's 20 logins (the limiter is not what is measured): "before" runs the
gunicorn configuration the gateway had until issue 12 (BEFORE_CONF: gthread, 8 threads
per worker), "now" runs gateway/gunicorn.conf.py as it is.
Against each, 200 slow clients are kept connected from asyncio: 100 send request headers
at 1 KB/s without ever ending them, 100 send an upload's body (with a valid token) at
1 KB/s. A client the gateway cuts off is replaced at once, so 200 are connected all along.
Meanwhile, once a second for 20 s each, three probes time GET /healthz, POST /login (the
development user, through auth) and POST /upload of a real ~1 MB MP4 (ffmpeg-made).
A call that has not answered in 5 s counts as 5 s. Target (now): every call within 1 s.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from mp3testing.media import ffmpeg  # noqa: E402

SLOW_HEADERS = 100
SLOW_BODIES = 100
BYTES_PER_SECOND = 1000
PIECES_PER_SECOND = 10
PROBE_SECONDS = 20
CALL_TIMEOUT = 5.0
TARGET_SECONDS = 1.0
DEV_USER = ("assylbek@email.com", "Admin123")
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
CALLS = ("GET /healthz", "POST /login", "POST /upload 1 MB")
#: The gateway's gunicorn.conf.py before issue 12 (its workers, threads and timeouts).
BEFORE_CONF = """
from gateway_service.settings import load
from mp3common.gunicorn_conf import (
    access_log_format, accesslog, child_exit, control_socket_disable, logconfig_dict,
    starting_hook,
)
on_starting = starting_hook(load)
worker_class = "gthread"
workers = 2
threads = 8
timeout = 60
graceful_timeout = 30
keepalive = 5
"""
#: Each configuration measured: the gunicorn config file's text (None: gunicorn.conf.py).
CONFIGS = {
    "before: gthread, 2 workers x 8 threads": BEFORE_CONF,
    "now: gunicorn.conf.py (gevent, 2 workers)": None,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_video(path: Path) -> Path:
    """A real MP4 (picture and sound) of about 1 MB."""
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25:duration=20",
        "-f", "lavfi", "-i", "sine=duration=20",
        "-c:v", "mpeg4", "-c:a", "aac", "-shortest", "-y", str(path),
    )  # fmt: skip
    return path


class Gateway:
    """The gateway on a free port, from gunicorn.conf.py or another config file `conf`."""

    def __init__(self, conf: Path | None, database: str, queue: str) -> None:
        self.port = free_port()
        env = {**os.environ, "MONGODB_DB": database, "VIDEO_QUEUE": queue, "LOG_LEVEL": "warning"}
        env["PYTHONPATH"] = str(ROOT / "gateway")  # for a config file from elsewhere
        env["LOGIN_LIMIT_STORAGE"] = "memory"
        env["LOGIN_LIMIT_PER_ADDRESS"] = env["LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS"] = "600/minute"
        options = ["--config", str(conf)] if conf else []
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.pop("METRICS_PORT", None)
        self.log = tempfile.TemporaryFile()  # shown only if it does not start
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{self.port}"]
            + ["--access-logfile", "/dev/null", *options, "server:app"],
            cwd=ROOT / "gateway",
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.log.seek(0)
        sys.stderr.write(self.log.read().decode(errors="replace")[-4000:])
        self.stop()
        raise SystemExit("the bench gateway did not become ready")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[str]:
        pid = self.process.pid
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()

    def workers_rss_mb(self) -> float:
        total_kb = 0
        for pid in self.workers():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        return total_kb / 1024

    def workers_cpu_seconds(self) -> float:
        """User and system CPU time the workers have used so far."""
        ticks = 0
        for pid in self.workers():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# --- the slow clients ------------------------------------------------------------------------


def slow_header_bytes():
    """A request line, then header lines of 1 KB each, without end."""
    yield b"GET /healthz HTTP/1.1\r\nHost: bench\r\n"
    n = 0
    while True:
        n += 1
        line = f"X-Slow-{n}: ".encode()
        yield line + b"a" * (BYTES_PER_SECOND - len(line) - 2) + b"\r\n"


def slow_body_bytes(port: int, token: str, video: bytes):
    """A complete upload request head, then its multipart body (a real MP4's bytes)."""
    boundary = "benchslowclient"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    length = 10_000_000
    yield (
        f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    yield head
    while True:
        yield video


class SlowClients:
    """Keeps `count` clients sending what `source()` yields at 1 KB/s, replacing any cut off."""

    def __init__(self, port: int, count: int, source) -> None:
        self.port, self.count, self.source = port, count, source
        self.connected = 0
        self.cut_off: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._one(stop) for _ in range(self.count)))

    async def _one(self, stop: asyncio.Event) -> None:
        piece = BYTES_PER_SECOND // PIECES_PER_SECOND
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self._count("refused")
                await asyncio.sleep(0.1)
                continue
            self.connected += 1
            answer = asyncio.ensure_future(reader.read(200))
            stopped = asyncio.ensure_future(stop.wait())
            try:
                for chunk in self.source():
                    for start in range(0, len(chunk), piece):
                        writer.write(chunk[start : start + piece])
                        await writer.drain()
                        await asyncio.wait(
                            [answer, stopped], timeout=1 / PIECES_PER_SECOND,
                            return_when=asyncio.FIRST_COMPLETED,
                        )  # fmt: skip
                        if answer.done() or stop.is_set():
                            raise StopIteration
            except (StopIteration, OSError):
                pass
            finally:
                self.connected -= 1
                stopped.cancel()
                if not stop.is_set():
                    self._count(await self._answer(answer))
                answer.cancel()
                writer.close()

    @staticmethod
    async def _answer(answer: asyncio.Future) -> str:
        try:
            data = await asyncio.wait_for(answer, 1)
        except (TimeoutError, OSError):
            return "reset"
        first = data.split(b"\r\n", 1)[0].decode(errors="replace")
        return first.split(" ", 2)[1] if first.startswith("HTTP/") else "closed"

    def _count(self, how: str) -> None:
        self.cut_off[how] = self.cut_off.get(how, 0) + 1


# --- the probes ------------------------------------------------------------------------------


def probe(name: str, call, results: dict, stop_at: float) -> None:
    times, statuses = [], []
    while time.monotonic() < stop_at:
        tick = time.monotonic()
        try:
            status = call()
        except requests.RequestException as exc:
            status = type(exc).__name__
        times.append(min(time.monotonic() - tick, CALL_TIMEOUT))
        statuses.append(status)
        time.sleep(max(0.0, tick + 1 - time.monotonic()))
    results[name] = (times, statuses)


def measure(name: str, conf: Path | None, token: str, video: Path) -> dict:
    suffix = uuid.uuid4().hex[:8]
    database, queue = f"mp3bench_{suffix}", f"bench.slow.{suffix}"
    gateway = Gateway(conf, database, queue)
    data = video.read_bytes()
    headers = SlowClients(gateway.port, SLOW_HEADERS, slow_header_bytes)
    bodies = SlowClients(
        gateway.port, SLOW_BODIES, lambda: slow_body_bytes(gateway.port, token, data)
    )
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def slow_clients() -> None:
        await asyncio.gather(headers.run(stop), bodies.run(stop))

    runner = threading.Thread(target=loop.run_until_complete, args=(slow_clients(),))
    results: dict = {}
    try:
        runner.start()
        deadline = time.monotonic() + 15
        while headers.connected + bodies.connected < SLOW_HEADERS + SLOW_BODIES:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(2)  # they have begun sending
        connected_at_start = headers.connected + bodies.connected
        stop_at = time.monotonic() + PROBE_SECONDS
        cpu_before = gateway.workers_cpu_seconds()
        calls = {
            "GET /healthz": lambda: (
                requests.get(f"{gateway.url}/healthz", timeout=CALL_TIMEOUT).status_code
            ),
            "POST /login": lambda: (
                requests.post(
                    f"{gateway.url}/login", auth=DEV_USER, timeout=CALL_TIMEOUT
                ).status_code
            ),
            "POST /upload 1 MB": lambda: upload(gateway.url, token, video),
        }
        probes = [
            threading.Thread(target=probe, args=(label, call, results, stop_at))
            for label, call in calls.items()
        ]
        for thread in probes:
            thread.start()
        for thread in probes:
            thread.join()
        connected_at_end = headers.connected + bodies.connected
        rss = gateway.workers_rss_mb()
        cpu = gateway.workers_cpu_seconds() - cpu_before
    finally:
        loop.call_soon_threadsafe(stop.set)
        runner.join(30)
        gateway.stop()
        MongoClient(MONGODB_URI).drop_database(database)
        _delete_queue(queue)
    return {
        "name": name,
        "results": results,
        "connected": (connected_at_start, connected_at_end),
        "cut_off": {"headers": headers.cut_off, "bodies": bodies.cut_off},
        "rss": rss,
        "cpu": cpu,
    }


def upload(url: str, token: str, video: Path) -> int:
    with video.open("rb") as handle:
        return requests.post(
            f"{url}/upload",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("probe.mp4", handle, "video/mp4")},
            timeout=CALL_TIMEOUT,
        ).status_code


def _delete_queue(queue: str) -> None:
    import pika

    url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for name in (queue, f"{queue}.dlq"):
        channel.queue_delete(name)
    connection.close()


def report(run: dict) -> bool:
    out = sys.stdout.write
    start, end = run["connected"]
    cut = "; ".join(
        f"{kind} {', '.join(f'{n} {how}' for how, n in sorted(counts.items())) or 'none'}"
        for kind, counts in run["cut_off"].items()
    )
    out(
        f"\n{run['name']}: slow clients connected {start} at the start, {end} at the end; "
        f"cut off and replaced: {cut}; workers' RSS {run['rss']:.0f} MB, "
        f"CPU {run['cpu']:.1f} s in {PROBE_SECONDS} s\n"
    )
    out(f"{'call':<18} | {'calls':>5} | {'answers':<24} | {'p50 s':>6} | {'max s':>6} | ≤ 1 s\n")
    ok = True
    for label in sorted(run["results"], key=CALLS.index):
        times, statuses = run["results"][label]
        answers = ", ".join(
            f"{statuses.count(s)}×{s}" for s in sorted(set(statuses), key=str)
        )  # fmt: skip
        answered = zip(times, statuses, strict=True)
        within = sum(1 for t, s in answered if t <= TARGET_SECONDS and s in (200, 202))
        out(
            f"{label:<18} | {len(times):>5} | {answers:<24} | {statistics.median(times):>6.3f} | "
            f"{max(times):>6.3f} | {within}/{len(times)}\n"
        )
        ok = ok and within == len(times)
    return ok


def main() -> int:
    only_now = "--now" in sys.argv[1:]
    auth = f"http://{os.environ.get('AUTH_SVC_ADDRESS', '127.0.0.1:5000')}"
    token = requests.post(f"{auth}/login", auth=DEV_USER, timeout=10).text
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        video = make_video(Path(folder) / "probe.mp4")
        size = video.stat().st_size
        for name, text in CONFIGS.items():
            if only_now and not name.startswith("now"):
                continue
            conf = None
            if text is not None:
                conf = Path(folder) / "gunicorn_before.conf.py"
                conf.write_text(text)
            runs.append(measure(name, conf, token, video))
    sys.stdout.write(
        f"{SLOW_HEADERS} clients send headers and {SLOW_BODIES} upload bodies at "
        f"{BYTES_PER_SECOND} B/s; each call once a second for {PROBE_SECONDS} s "
        f"(upload {size / 1e6:.2f} MB; a call not answered in {CALL_TIMEOUT:g} s counts "
        f"{CALL_TIMEOUT:g} s)\n"
    )
    met = {run["name"]: report(run) for run in runs}
    now = met[next(name for name in met if name.startswith("now"))]
    sys.stdout.write(
        f"\ntarget: with 200 slow clients, every call answered within {TARGET_SECONDS:g} s: "
        + ("met" if now else "NOT MET")
        + "\n"
    )
    return 0 if now else 1


if __name__ == "__main__":
    sys.exit(main())
