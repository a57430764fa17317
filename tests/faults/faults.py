"""`make faults`: the running stack attacked and broken as production would be, with figures.

Each scenario drives the stack `make run` started from outside (HTTP to the gateway, the
SMTP sink's maildir, MongoDB and RabbitMQ read directly to count what exists), breaks a
part of it (supervisorctl stop/kill -9, `rabbitmqctl stop_app`), and counts: uploads
accepted, jobs done, MP3s stored, mails sent, anything lost. It prints one table and exits
non-zero if anything accepted was lost (or a benchmark scenario missed its target).
Bounded: each scenario gives up after its timeout.

    make faults                       # every scenario
    make faults ONLY=broker_outage    # one (names as in the table)

The parts that are quick are tests in `make test` too; this runs longer (minutes).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from bson import ObjectId
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from reference_flow import fid_in, mails_to  # noqa: E402

from mp3testing import wait_until  # noqa: E402
from mp3testing.media import ffmpeg  # noqa: E402
from mp3testing.users import new_user  # noqa: E402

GATEWAY = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
CONF = ROOT / "dev" / "supervisord.conf"
WORK = ROOT / "var" / "faults"
#: The issue's target: another user's mail, next to a poison filename, within 10 s.
OTHER_MAIL_WITHIN_SECONDS = 10


@dataclass
class Row:
    scenario: str
    accepted: int = 0
    done: int = 0
    mp3s: int = 0
    mails: int = 0
    lost: int = 0
    figures: list[str] = field(default_factory=list)
    #: A target missed without anything lost (the benchmarks' rows).
    missed: bool = False


# --- driving the stack --------------------------------------------------------------------


class User:
    def __init__(self, prefix: str) -> None:
        self.email, password = new_user(prefix)
        token = requests.post(f"{GATEWAY}/login", auth=(self.email, password), timeout=10).text
        self.headers = {"Authorization": f"Bearer {token}"}

    def upload(self, path: Path, name: str | None = None) -> requests.Response:
        with path.open("rb") as body:
            return requests.post(
                f"{GATEWAY}/upload",
                headers=self.headers,
                files={"file": (name or path.name, body)},
                timeout=60,
            )

    def state(self, fid: str) -> str:
        answer = requests.get(
            f"{GATEWAY}/status", params={"fid": fid}, headers=self.headers, timeout=10
        )
        return answer.json().get("state", f"http {answer.status_code}")

    def mailed_fids(self) -> list[str]:
        return [fid_in(mail) for mail in mails_to(self.email)]


def ctl(*args: str) -> str:
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "supervisorctl"), "-c", str(CONF), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip()


def pids(group: str) -> dict[str, int]:
    """{program: pid} of a supervisord program (converter: every copy)."""
    found = {}
    for line in ctl("status").splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith(f"services:{group}") and "pid " in rest:
            found[name] = int(rest.split("pid ", 1)[1].split(",", 1)[0])
    return found


def database():
    client = MongoClient(os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017"))
    return client[os.environ.get("MONGODB_DB", "mp3converter")]


def mp3s_of(fids: list[str]) -> int:
    files = database()["mp3s.files"]
    return sum(files.count_documents({"metadata.job_id": ObjectId(fid)}) for fid in fids)


def settle(row: Row, user_fids: dict[User, list[str]], timeout: float) -> None:
    """Wait until every accepted job is final and mailed, or the timeout; then count."""
    every = [fid for fids in user_fids.values() for fid in fids]

    def all_mailed() -> bool:
        return all(set(fids) <= set(user.mailed_fids()) for user, fids in user_fids.items())

    wait_until(all_mailed, timeout)
    row.accepted = len(every)
    states = [user.state(fid) for user, fids in user_fids.items() for fid in fids]
    row.done = states.count("done")
    row.mp3s = mp3s_of(every)
    mailed = [fid for user in user_fids for fid in user.mailed_fids()]
    row.mails = len(mailed)
    missing = [fid for fid in every if fid not in mailed]
    not_done = [fid for fid, state in zip(every, states, strict=True) if state != "done"]
    row.lost = len(set(missing) | set(not_done)) + max(row.done - row.mp3s, 0)
    duplicates = row.mails - len(set(mailed))
    if duplicates:
        row.figures.append(f"{duplicates} duplicate mail(s)")


def clip(seconds: float, name: str, *, long_audio: bool = False) -> Path:
    """A small video, or `long_audio`: a long Opus tone that takes ffmpeg seconds to convert."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / name
    if not path.exists():
        if long_audio:
            ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                   "-c:a", "libopus", "-b:a", "12k", str(path))  # fmt: skip
        else:
            ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=10:duration={seconds}",
                   "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                   "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path))  # fmt: skip
    return path


# --- the scenarios ------------------------------------------------------------------------


def converters_killed(kills: int = 10) -> Row:
    """kill -9 a converter while it converts, `kills` times: every job done exactly once."""
    row, user = Row("converters_killed"), User("faults-kill")
    source = clip(1800, "half-hour.opus", long_audio=True)
    fids = []
    for _ in range(kills):
        answer = user.upload(source)
        fid = answer.json()["fid"]
        fids.append(fid)
        wait_until(lambda fid=fid: user.state(fid) == "converting", 60)
        time.sleep(0.5)  # ffmpeg is running by now
        for pid in pids("converter").values():
            os.kill(pid, signal.SIGKILL)
        # One kill per job: the next waits until this one is finished again.
        wait_until(lambda fid=fid: user.state(fid) in ("done", "failed"), 180)
    settle(row, {user: fids}, timeout=600)
    row.figures.append(f"{kills} kills -9 mid-conversion")
    return row


def broker_outage(uploads: int = 20) -> Row:
    """RabbitMQ stopped after 5 of `uploads` and started 5 later: 503 JSON meanwhile."""
    row, user = Row("broker_outage"), User("faults-broker")
    source = clip(3, "three.mp4")
    fids, refused, not_json = [], 0, 0
    for n in range(uploads):
        if n == 5:
            subprocess.run(["rabbitmqctl", "stop_app"], capture_output=True, check=True)
        if n == 10:
            subprocess.run(["rabbitmqctl", "start_app"], capture_output=True, check=True)
            time.sleep(2)
        answer = user.upload(source)
        if answer.status_code == 202:
            fids.append(answer.json()["fid"])
        else:
            refused += 1
            if answer.headers.get("Content-Type", "").split(";")[0] != "application/json":
                not_json += 1
    settle(row, {user: fids}, timeout=300)
    row.figures.append(f"{refused} refused while down (503), {not_json} not JSON")
    row.lost += not_json
    return row


def notification_killed(uploads: int = 40) -> Row:
    """kill -9 the notifier at its first mail of `uploads`: every mail still goes."""
    row, user = Row("notification_killed"), User("faults-notify")
    source = clip(3, "three.mp4")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: user.upload(source), range(uploads)))
    fids = [answer.json()["fid"] for answer in answers]
    wait_until(lambda: len(mails_to(user.email)) >= 1, 120)
    for pid in pids("notification").values():
        os.kill(pid, signal.SIGKILL)
    row.figures.append(f"notifier killed -9 after {len(mails_to(user.email))} of {uploads} mails")
    settle(row, {user: fids}, timeout=300)
    return row


def _bench(name: str, script: str) -> Row:
    """A benchmark of tests/bench as a scenario: its exit code says whether it met its
    target; its table is printed above."""
    row = Row(name)
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / script)], timeout=900)
    row.missed = done.returncode != 0
    row.figures.append("target missed (table above)" if row.missed else "target met (table above)")
    return row


def slow_clients() -> Row:
    """200 slow clients (headers and bodies at 1 KB/s): /healthz, login, upload within 1 s."""
    return _bench("slow_clients", "bench_slow_clients.py")


def login_flood() -> Row:
    """200 concurrent wrong-password logins: auth within its memory limit, the owner in."""
    return _bench("login_flood", "bench_login_flood.py")


def auth_down() -> Row:
    """auth stopped: login and upload answer 503 JSON; started again: they work."""
    row, user = Row("auth_down"), User("faults-auth")
    source = clip(3, "three.mp4")
    ctl("stop", "services:auth")
    try:
        answers = [requests.post(f"{GATEWAY}/login", auth=(user.email, "x"), timeout=10),
                   user.upload(source)]  # fmt: skip
    finally:
        ctl("start", "services:auth")
    shape = [(a.status_code, a.headers.get("Content-Type", "").split(";")[0]) for a in answers]
    started = time.monotonic()
    wait_until(lambda: user.upload(source).status_code == 202, 60)
    row.figures.append(f"while down: {shape}; back in {time.monotonic() - started:.1f} s")
    row.lost = sum(1 for status, kind in shape if status != 503 or kind != "application/json")
    return row


def many_uploads(users: int = 5, each: int = 20) -> Row:
    """users × each concurrent uploads: as many MP3s and mails, and the time to drain."""
    row = Row("many_uploads")
    people = [User(f"faults-many{n}") for n in range(users)]
    source = clip(3, "three.mp4")
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = {person: [pool.submit(person.upload, source) for _ in range(each)]
                   for person in people}  # fmt: skip
        user_fids = {
            person: [f.result().json()["fid"] for f in fs] for person, fs in futures.items()
        }
    settle(row, user_fids, timeout=600)
    row.figures.append(f"drained in {time.monotonic() - started:.1f} s")
    return row


def poison_filename() -> Row:
    """A filename with U+2028 and U+200B next to another user's upload: both mailed fast."""
    row, poisoner, other = Row("poison_filename"), User("faults-poison"), User("faults-other")
    source = clip(3, "three.mp4")
    bad = poisoner.upload(source, "report\u2028Bcc: victim@example.com\u200b.mp4").json()["fid"]
    started = time.monotonic()
    good = other.upload(source).json()["fid"]
    wait_until(lambda: good in other.mailed_fids(), 60)
    delay = time.monotonic() - started
    row.missed = delay > OTHER_MAIL_WITHIN_SECONDS
    row.figures.append(f"the other user's mail after {delay:.1f} s")
    settle(row, {poisoner: [bad], other: [good]}, timeout=60)
    return row


SCENARIOS: dict[str, Callable[[], Row]] = {
    scenario.__name__: scenario
    for scenario in (
        many_uploads,
        poison_filename,
        auth_down,
        notification_killed,
        broker_outage,
        converters_killed,
        slow_clients,
        login_flood,
    )  # fmt: skip
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), default=None)
    chosen = parser.parse_args().only or list(SCENARIOS)
    rows = []
    for name in chosen:
        sys.stdout.write(f"==> {name}\n")
        sys.stdout.flush()
        started = time.monotonic()
        try:
            row = SCENARIOS[name]()
        except Exception as exc:  # noqa: BLE001 - a scenario that breaks is a row, not a crash
            row = Row(name, lost=-1, figures=[f"did not finish: {exc!r}"])
        row.figures.append(f"{time.monotonic() - started:.0f} s")
        rows.append(row)
    header = ("scenario", "accepted", "done", "mp3s", "mails", "lost")
    sys.stdout.write("\n{:22} {:>8} {:>5} {:>5} {:>5} {:>5}  figures\n".format(*header))
    for r in rows:
        counts = (r.scenario, r.accepted, r.done, r.mp3s, r.mails, r.lost)
        sys.stdout.write("{:22} {:8} {:5} {:5} {:5} {:5}  ".format(*counts))
        sys.stdout.write("; ".join(r.figures) + "\n")
    return 0 if all(r.lost == 0 and not r.missed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
