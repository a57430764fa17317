"""A login flood against auth's memory limit, and a legitimate user's logins meanwhile.

Issue 12, part 4: 200 concurrent wrong-password logins for 30 s from one address must
never take auth past its Deployment's memory limit (256 Mi), and a legitimate login from
another address must succeed within 2 s throughout.

An auth and a gateway of their own are started for this, as the images run them (auth with
the Dockerfile's gunicorn flags: 2 workers x 4 threads; the gateway with its
gunicorn.conf.py), on the stack's MariaDB and MongoDB (the login counters in a database of
their own), so that the memory measured is this run's and no other test is disturbed. The
addresses are the loopback's: the flood comes from 127.0.0.66, the legitimate user from
127.0.0.2 (the whole of 127.0.0.0/8 reaches 127.0.0.1).

1. Through the gateway, as the ingress would send it: the flood aims wrong passwords at
   the owner's own account; the owner and three other users log in from 127.0.0.2, one
   login a second, round robin (each stays under the per-account limit of 10/minute).
2. Straight at auth, as if the gateway's limits were not there (a flood from many
   addresses): wrong passwords for an account whose hash is from before (argon2-cffi's
   64 MiB default), the costliest verify there is. The legitimate logins go on; no
   target there, the figures are shown.

Auth's memory is sampled every 20 ms (an argon2 verify lasts 20 to 150 ms): the sum of its
processes' RSS (the arbiter and both workers), the figure judged: pages they share are
counted once per process, so it overstates what the container is charged; and the sum of
their PSS (shared pages split between them: close to what the container is charged).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import argon2
import MySQLdb
import requests
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gateway import children, free_port, machine, status_kb  # noqa: E402

from mp3testing.logins import basic, connect_from  # noqa: E402
from mp3testing.users import create_user, delete_user  # noqa: E402

MiB = 1024 * 1024
LIMIT_MIB = 256  # auth/manifests/auth-deploy.yaml: resources.limits.memory
FLOODERS, FLOOD_SECONDS, FLOOD_PROCESSES = 200, 30, 4
ATTACKER, LEGITIMATE = "127.0.0.66", "127.0.0.2"
LEGITIMATE_TARGET_SECONDS = 2.0
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")


def dockerfile_gunicorn_flags() -> list[str]:
    """The auth image's gunicorn flags (workers, threads, timeout), binds and app left out."""
    line = next(
        text for text in (ROOT / "auth" / "Dockerfile").read_text().splitlines()
        if text.startswith("CMD ")
    )  # fmt: skip
    command = json.loads(line[4:])
    flags, skip = [], False
    for arg in command[1:]:
        if skip:
            skip = False
        elif arg == "--bind":
            skip = True
        elif arg != "server:app":
            flags.append(arg)
    return flags


class Server:
    """A gunicorn of its own on a free port, from a service folder."""

    def __init__(self, service: str, args: list[str], env: dict[str, str]) -> None:
        self.port = free_port()
        environ = {**os.environ, "LOG_LEVEL": "warning", **env}
        environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        environ.pop("METRICS_PORT", None)
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{self.port}"]
            + ["--access-logfile", "/dev/null", *args, "server:app"],
            cwd=ROOT / service,
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    time.sleep(1)  # every worker up
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the bench {service} did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return [self.process.pid, *children(self.process.pid)]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


class MemorySampler(threading.Thread):
    """The auth processes' summed RSS and PSS every 20 ms; the peaks."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.peak_rss_kb = self.peak_pss_kb = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                pids = self.server.pids()
                self.peak_rss_kb = max(self.peak_rss_kb, sum(status_kb(p, "VmRSS") for p in pids))
                self.peak_pss_kb = max(self.peak_pss_kb, sum(pss_kb(p) for p in pids))
            except (FileNotFoundError, ProcessLookupError):
                pass
            time.sleep(0.02)


def flood(url: str, email: str, seconds: float, counts: dict[int, int], lock) -> None:
    """Wrong passwords for `email`, from ATTACKER, on one kept-alive connection, until done."""
    deadline = time.monotonic() + seconds
    headers = basic(email, "not the password")
    connection = connect_from(ATTACKER, url, timeout=30)
    while time.monotonic() < deadline:
        try:
            connection.request("POST", "/login", headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
        except (OSError, http.client.HTTPException):
            status = 0
            connection.close()
            connection = connect_from(ATTACKER, url, timeout=30)
            time.sleep(0.05)
        with lock:
            counts[status] = counts.get(status, 0) + 1
    connection.close()


def flood_process(url: str, email: str, seconds: float, threads: int) -> None:
    """`--flood`: `threads` flooding connections in this process; their answers as JSON.

    The flood runs in processes of its own: 200 threads in the measuring process would
    hold its GIL and delay the legitimate logins' own clock."""
    counts: dict[int, int] = {}
    lock = threading.Lock()
    workers = [
        threading.Thread(target=flood, args=(url, email, seconds, counts, lock))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sys.stdout.write(json.dumps(counts))


def legitimate(url: str, users: list[tuple[str, str]], seconds: float, out: list) -> None:
    """One login a second from LEGITIMATE, round robin over `users`, with curl (its own
    clock): (seconds, status) each."""
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        email, password = users[n % len(users)]
        started = time.monotonic()
        done = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-X", "POST"]
            + ["--interface", LEGITIMATE, "-u", f"{email}:{password}", "--max-time", "30"]
            + [f"{url}/login"],
            capture_output=True,
            text=True,
        )
        status, took = done.stdout.split()
        out.append((float(took), int(status)))
        n += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


def run_phase(auth: Server, flood_url: str, target_email: str, gateway_url: str, users):
    sampler = MemorySampler(auth)
    sampler.start()
    per_process = FLOODERS // FLOOD_PROCESSES
    flooders = [
        subprocess.Popen(
            [sys.executable, __file__, "--flood", flood_url, target_email]
            + [str(FLOOD_SECONDS), str(per_process)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(FLOOD_PROCESSES)
    ]
    logins: list[tuple[float, int]] = []
    legitimate(gateway_url, users, FLOOD_SECONDS, logins)
    counts: dict[int, int] = {}
    for process in flooders:
        output, _ = process.communicate(timeout=FLOOD_SECONDS + 60)
        for status, n in json.loads(output).items():
            counts[int(status)] = counts.get(int(status), 0) + n
    time.sleep(0.2)
    sampler.running = False
    sampler.join()
    return {
        "counts": counts,
        "logins": logins,
        "rss": sampler.peak_rss_kb / 1024,
        "pss": sampler.peak_pss_kb / 1024,
    }


def insert_old_hash_user(email: str, password: str) -> None:
    """A user whose hash is from before today's parameters (argon2-cffi's 64 MiB default),
    inserted as the service's own account may."""
    connection = MySQLdb.connect(
        host=os.environ.get("MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("MYSQL_PORT", "3306")),
        user=os.environ["MYSQL_USER"],
        passwd=os.environ["MYSQL_PASSWORD"],
        db=os.environ["MYSQL_DB"],
    )
    try:
        connection.cursor().execute(
            "INSERT INTO user (email, password_hash) VALUES (%s, %s)",
            (email, argon2.PasswordHasher().hash(password)),
        )
        connection.commit()
    finally:
        connection.close()


def main() -> int:
    suffix = uuid.uuid4().hex[:8]
    users = [(f"bench-flood-{n}-{suffix}@example.com", f"pw-{uuid.uuid4().hex}") for n in range(4)]
    old_hash_user = (f"bench-old-{suffix}@example.com", f"pw-{uuid.uuid4().hex}")
    for email, password in users:
        create_user(email, password)
    insert_old_hash_user(*old_hash_user)
    database = f"mp3bench_{suffix}"
    flags = dockerfile_gunicorn_flags()
    auth = Server("auth", flags, {})
    gateway = Server(
        "gateway",
        [],
        {
            "AUTH_SVC_ADDRESS": f"127.0.0.1:{auth.port}",
            "MONGODB_DB": database,
            "VIDEO_QUEUE": f"bench.flood.{suffix}",
            "OUTBOX_RELAY_INTERVAL_SECONDS": "0",
            "TRUSTED_PROXY_HOPS": "0",
            "LOGIN_LIMIT_STORAGE": "mongodb",
        },
    )
    try:
        idle = sum(status_kb(p, "VmRSS") for p in auth.pids()) / 1024
        idle_pss = sum(pss_kb(p) for p in auth.pids()) / 1024
        through_gateway = run_phase(auth, gateway.url, users[0][0], gateway.url, users)
        straight_at_auth = run_phase(auth, auth.url, old_hash_user[0], gateway.url, users)
    finally:
        gateway.stop()
        auth.stop()
        MongoClient(MONGODB_URI).drop_database(database)
        for email, _ in [*users, old_hash_user]:
            delete_user(email)

    out = sys.stdout.write
    out(f"machine: {machine()}\n")
    out(f"auth: gunicorn {' '.join(flags)}; argon2id 19 MiB, 2 passes, 1 lane; ")
    out(
        f"LOGIN_VERIFY_SLOTS=2; limit {LIMIT_MIB} MiB; "
        f"idle: RSS {idle:.0f} MiB, PSS {idle_pss:.0f} MiB\n"
    )
    out(f"flood: {FLOODERS} connections x {FLOOD_SECONDS} s of wrong passwords from {ATTACKER}; ")
    out(f"legitimate: 1 login/s from {LEGITIMATE}, 4 users round robin\n")
    header = (
        f"{'phase':<34} | {'flood answers':<30} | {'auth RSS Σ':>10} | {'PSS Σ':>7} | "
        f"{'legit ok':>8} | {'legit p50':>9} | {'legit max':>9}\n"
    )
    out(header)
    out("-" * (len(header) - 1) + "\n")
    ok = True
    for name, phase, judged in (
        ("1. through the gateway (limits on)", through_gateway, True),
        ("2. straight at auth, 64 MiB hashes", straight_at_auth, False),
    ):
        answers = ", ".join(f"{code or 'err'}:{n}" for code, n in sorted(phase["counts"].items()))
        times = [seconds for seconds, _ in phase["logins"]]
        good = sum(1 for seconds, status in phase["logins"] if status == 200)
        out(
            f"{name:<34} | {answers:<30} | {phase['rss']:>6.0f} MiB | {phase['pss']:>3.0f} MiB | "
            f"{good:>3}/{len(times):<4} | "
            f"{statistics.median(times):>7.2f} s | {max(times):>7.2f} s\n"
        )
        ok = ok and phase["rss"] <= LIMIT_MIB
        if judged:
            ok = ok and all(
                status == 200 and seconds <= LEGITIMATE_TARGET_SECONDS
                for seconds, status in phase["logins"]
            )
    out(
        f"targets: auth's RSS (sum) <= {LIMIT_MIB} MiB in both phases; in phase 1 "
        f"every legitimate login 200 within {LEGITIMATE_TARGET_SECONDS:.0f} s: "
        + ("met" if ok else "NOT MET")
        + "\n"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--flood"]:
        url, email, seconds, threads = sys.argv[2:6]
        flood_process(url, email, float(seconds), int(threads))
    else:
        sys.exit(main())
