"""mp3c: convert videos with an mp3converter server from the command line.

    mp3c login [--email E]                 ask for the password, keep the token (mode 600)
    mp3c convert FILE… [options] [-o DIR]  upload (resumable), wait, download the audio
    mp3c jobs                              your jobs, newest first
    mp3c get FID [-o DIR]                  download a finished job's file
    mp3c rm FID                            delete a job and its files

Exit codes (`EXIT_CODES`): 0 done; 1 a conversion failed or was cancelled; 2 wrong usage;
3 not logged in or the token ended; 4 the server refused (a bad option, too large, not
found…); 5 the server cannot be reached or is unavailable; 130 interrupted. Errors print
the API's own message, after the file's name when it concerns one file.

With several files, `convert` goes on past a file that is refused or fails to convert,
downloads every result that converted, and exits with the highest code among the files
(4 over 1). Codes 3 and 5 hold for every file, so they stop it at once.

A download never replaces a file: a taken name becomes `clip (1).mp3`, `clip (2).mp3`…
"""

from __future__ import annotations

import argparse
import getpass
import itertools
import os
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import __version__
from .api import Api, ApiError
from .config import DEFAULT_URL, TOKEN_VARIABLE, URL_VARIABLE, Config, ConfigError, resolve
from .upload import upload

EXIT_CODES = {
    0: "done",
    1: "a conversion failed or was cancelled",
    2: "wrong usage",
    3: "not logged in, or the token ended (mp3c login)",
    4: "the server refused the request (its message says why)",
    5: "the server cannot be reached or is unavailable",
    130: "interrupted",
}
OPTIONS = ("format", "quality", "start", "end", "normalize", "track", "channels")
FINAL = ("done", "failed", "cancelled")
POLL_SECONDS = 0.5


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def complain(text: str) -> None:
    sys.stderr.write(f"mp3c: {text}\n")
    sys.stderr.flush()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="mp3c",
        description="Convert videos to audio with an mp3converter server.",
        epilog="exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items()),
    )
    top.add_argument("--version", action="version", version=f"mp3c {__version__}")
    top.add_argument("--url", help=f"the server (else ${URL_VARIABLE}, the config, {DEFAULT_URL})")
    top.add_argument("--token", help=f"a token (else ${TOKEN_VARIABLE}, or the config's)")
    top.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = commands.add_parser("login", help="log in and keep the token")
    login.add_argument("--email", help="your email (else asked)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    convert = commands.add_parser("convert", help="convert files, wait, download the results")
    convert.add_argument("files", nargs="+", type=Path, metavar="FILE")
    convert.add_argument("--format", help="mp3 (default), m4a, opus, flac, wav")
    convert.add_argument("--quality", help="e.g. V0-V9 or 128k-320k for mp3; see GET /formats")
    convert.add_argument("--start", help="trim: start, seconds or [hh:]mm:ss[.ms]")
    convert.add_argument("--end", help="trim: end, seconds or [hh:]mm:ss[.ms]")
    convert.add_argument("--normalize", help="loudness target in LUFS, e.g. -16 (ebu = -23)")
    convert.add_argument("--track", help="audio track: number from 0, or a language (eng)")
    convert.add_argument("--channels", choices=("mono", "stereo"))
    convert.add_argument("-o", "--output-dir", type=Path, help="where to put the results")
    convert.add_argument(
        "--no-wait", action="store_true", help="upload only; print the fids and stop"
    )

    commands.add_parser("jobs", help="list your jobs")

    get = commands.add_parser("get", help="download a finished job's file")
    get.add_argument("fid")
    get.add_argument("-o", "--output-dir", type=Path, default=Path("."))

    remove = commands.add_parser("rm", help="delete a job and its files")
    remove.add_argument("fids", nargs="+", metavar="FID")

    commands.add_parser("logout", help="forget the kept token")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = Config.load()
        url, token = resolve(args.url, args.token, config)
        api = Api(url, token)
        if args.command not in ("login", "logout") and not token:
            raise ApiError("not logged in: run mp3c login (or pass --token)", status=401)
        return COMMANDS[args.command](api, args, config)
    except ApiError as exc:
        complain(exc.message)
        return exc.exit_code
    except ConfigError as exc:
        complain(str(exc))
        return 2
    except KeyboardInterrupt:
        complain("interrupted (an unfinished upload resumes on the next mp3c convert)")
        return 130


# --- the commands ---------------------------------------------------------------------------


def cmd_login(api: Api, args: argparse.Namespace, config: Config) -> int:
    email = args.email or input("Email: ").strip()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
    token = api.login(email, password)
    config.values.update(url=api.url, token=token, email=email)
    config.save()
    say(f"Logged in to {api.url} as {email} (token kept in {config.path}).")
    return 0


def cmd_logout(api: Api, args: argparse.Namespace, config: Config) -> int:
    config.values.pop("token", None)
    config.save()
    say("Logged out.")
    return 0


def cmd_convert(api: Api, args: argparse.Namespace, config: Config) -> int:
    options = {name: str(value) for name in OPTIONS if (value := getattr(args, name))}
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        complain(f"no such file: {', '.join(missing)}")
        return 2
    if args.output_dir is not None and not output_folder(args.output_dir):
        return 2
    worst = 0
    sent: list[tuple[Path, dict[str, Any]]] = []
    for path in args.files:
        try:
            job = upload(api, path, options, config, quiet=args.quiet)
        except ApiError as exc:
            worst = max(worst, refused(path, exc))
            continue
        say(f"{path.name}: uploaded, job {job['fid']}")
        sent.append((path, job))
    if args.no_wait:
        return worst
    for path, job in sent:
        try:
            finished = wait(api, job["fid"], path.name, quiet=args.quiet)
            if finished["state"] != "done":
                reason = finished.get("reason") or ""
                complain(f"{path}: {finished['state']}: {reason}".strip())
                worst = max(worst, 1)
                continue
            folder = args.output_dir if args.output_dir is not None else path.parent
            target = fetch(api, finished["fid"], folder, source=path, quiet=args.quiet)
        except ApiError as exc:
            worst = max(worst, refused(path, exc))
            continue
        if finished.get("warning"):
            complain(f"{path}: warning: {finished['warning']}")
        say(f"{path.name} -> {target}")
    return worst


def output_folder(folder: Path) -> bool:
    """Make the -o folder; False (a usage error, said) when it is a file or cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        complain(f"-o {folder}: not a folder; give a folder for the results")
        return False
    except OSError as exc:
        complain(f"-o {folder}: cannot make the folder ({exc.strerror})")
        return False
    return True


def refused(path: Path, exc: ApiError) -> int:
    """Name the file in the API's refusal; the exit code it stands for.

    A refusal (4) concerns this file alone, so the caller goes on with the others. Not logged
    in (3) or no server (5) holds for every file: it stops the command here.
    """
    named = ApiError(f"{path}: {exc.message}", status=exc.status, error=exc.error)
    if named.exit_code != 4:
        raise named from None
    complain(named.message)
    return named.exit_code


def wait(api: Api, fid: str, name: str, *, quiet: bool) -> dict[str, Any]:
    """Poll the job until it is finished, showing its conversion progress."""
    with tqdm(total=100, desc=f"convert {name}", unit="%", disable=quiet, leave=True) as bar:
        while True:
            job = api.job(fid)
            progress = job.get("progress") or 0
            bar.update(max(0.0, float(progress) - bar.n))
            eta = job.get("eta_seconds")
            bar.set_postfix_str(job["state"] + (f", {eta:.0f} s left" if eta else ""))
            if job["state"] in FINAL:
                return job
            time.sleep(POLL_SECONDS)


def fetch(
    api: Api, fid: str, folder: Path, *, source: Path | None = None, quiet: bool = False
) -> Path:
    """Download the job's file into `folder`, named after `source` (else the server's name).

    It never replaces a file: when the name is taken (an earlier result, the source itself, a
    second input of the same name), the result becomes `clip (1).mp3`, `clip (2).mp3`…
    """
    server_name, size, chunks = api.download(fid)
    extension = Path(server_name).suffix if server_name else ".mp3"
    name = f"{source.stem}{extension}" if source else (server_name or f"{fid}{extension}")
    partial = folder / f".{name}.{fid}.part"
    with (
        partial.open("wb") as out,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"download {name}",
            disable=quiet,
            leave=False,
        ) as bar,
    ):
        for chunk in chunks:
            out.write(chunk)
            bar.update(len(chunk))
    return settle(partial, folder / name)


def settle(partial: Path, wanted: Path) -> Path:
    """Give `partial` the first free name from `wanted`: `clip.mp3`, `clip (1).mp3`, …"""
    for number in itertools.count():
        target = (
            wanted if number == 0 else wanted.with_name(f"{wanted.stem} ({number}){wanted.suffix}")
        )
        try:
            os.link(partial, target)  # fails if the name is taken, unlike a rename
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links
            if target.exists():
                continue
            os.replace(partial, target)
            return target
        partial.unlink()
        return target
    raise AssertionError("unreachable")


def cmd_jobs(api: Api, args: argparse.Namespace, config: Config) -> int:
    jobs = api.jobs()
    if not jobs:
        say("No jobs.")
        return 0
    say(f"{'FID':24}  {'STATE':10}  {'DONE':>5}  {'FORMAT':6}  {'EXPIRES':20}  FILE")
    for job in jobs:
        progress = job.get("progress")
        done = f"{progress:.0f}%" if progress is not None else ""
        options = job.get("options") or {}
        expires = (job.get("expires_at") or "")[:19].replace("T", " ")
        say(
            f"{job['fid']:24}  {job['state']:10}  {done:>5}  {options.get('format', 'mp3'):6}  "
            f"{expires:20}  {job.get('filename') or ''}"
        )
    return 0


def cmd_get(api: Api, args: argparse.Namespace, config: Config) -> int:
    if not output_folder(args.output_dir):
        return 2
    target = fetch(api, args.fid, args.output_dir, quiet=args.quiet)
    say(str(target))
    return 0


def cmd_rm(api: Api, args: argparse.Namespace, config: Config) -> int:
    for fid in args.fids:
        api.delete(fid)
        say(f"deleted {fid}")
    return 0


COMMANDS = {
    "login": cmd_login,
    "logout": cmd_logout,
    "convert": cmd_convert,
    "jobs": cmd_jobs,
    "get": cmd_get,
    "rm": cmd_rm,
}


if __name__ == "__main__":
    sys.exit(main())
