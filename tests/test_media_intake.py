"""Media intake, on the real stack: what real devices and every ffmpeg muxer write converts,
with its timeline, from the right track; cut-off files are flagged; impostors get 415.

Every file goes in through `POST /upload` and comes out through `/status` and
`/download`, as a user's would (media_formats.py makes them).
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import pytest
import requests
from conftest import GATEWAY_URL, login
from media_formats import (
    SECONDS,
    audio_with_a_gap,
    every_audio_format,
    faststart_mp4_cut,
    late_audio,
    mdat_first_mov,
    mp3_cut_mid_frame,
    phone_3gp,
    read_back,
    rf64_wav,
    two_tracks_second_default,
    undecodable_first_track,
    volume,
    write_in_format,
)
from reference_flow import mails_to, mp3_duration, wait_for_mails

pytestmark = pytest.mark.stack

#: How far an MP3's length may be from its source's: MP3 frames are 26 ms, and some
#: formats pad to their block size.
TOLERANCE_SECONDS = 0.3
#: Formats the table must find writable and readable; a shorter table is a broken test.
AT_LEAST = {
    "3gp", "adts", "aiff", "asf", "au", "avi", "caf", "dts", "dv", "flac", "flv", "ipod",
    "matroska", "mov", "mp3", "mp4", "mpeg", "mpegts", "mxf", "nut", "ogg", "opus", "rm",
    "tta", "w64", "wav", "webm", "wv",
}  # fmt: skip


class Client:
    """A user of the running gateway."""

    def __init__(self, email: str, password: str) -> None:
        self.email = email
        self.headers = {"Authorization": f"Bearer {login(GATEWAY_URL, email, password)}"}

    def upload(self, content: bytes, filename: str | None = "clip") -> requests.Response:
        return requests.post(
            f"{GATEWAY_URL}/upload",
            headers=self.headers,
            files={"file": (filename, content)},
            timeout=60,
        )

    def finished(self, fid: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status = requests.get(
                f"{GATEWAY_URL}/status", params={"fid": fid}, headers=self.headers, timeout=10
            ).json()
            if status["state"] in ("done", "failed") or time.monotonic() > deadline:
                return status
            time.sleep(0.2)

    def mp3(self, fid: str, folder: Path) -> Path:
        answer = requests.get(
            f"{GATEWAY_URL}/download", params={"fid": fid}, headers=self.headers, timeout=60
        )
        assert answer.status_code == 200, answer.text
        path = folder / f"{fid}.mp3"
        path.write_bytes(answer.content)
        return path

    def convert(self, source: Path, folder: Path, filename: str | None = "clip") -> tuple:
        """(status, mp3 path or None): upload, wait, download."""
        answer = self.upload(source.read_bytes(), filename)
        assert answer.status_code == 202, answer.text
        status = self.finished(answer.json()["fid"])
        mp3 = self.mp3(status["fid"], folder) if status["state"] == "done" else None
        return status, mp3


@pytest.fixture
def user(new_user):
    return Client(*new_user("intake"))


# --- every format ffmpeg writes with sound ------------------------------------------------


def _made_and_readable(muxer: str, folder: Path) -> Path | None:
    path = write_in_format(muxer, folder)
    return path if path is not None and read_back(path) else None


def test_every_format_ffmpeg_writes_and_reads_back_converts_to_the_right_length(user, tmp_path):
    """The table: each muxer of the converter's ffmpeg that can carry sound, one 2 s file
    each; every file ffmpeg reads back from its bytes alone must convert. (Raw PCM and
    other headerless formats cannot be told from their content, by ffmpeg or anyone.)"""
    muxers = every_audio_format()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        paths = pool.map(lambda muxer: _made_and_readable(muxer, tmp_path), muxers)
        made = dict(zip(muxers, paths, strict=True))
    table = {muxer: path for muxer, path in made.items() if path is not None}
    assert AT_LEAST <= set(table), f"not made: {sorted(AT_LEAST - set(table))}"

    fids = {}
    for muxer, path in table.items():
        answer = user.upload(path.read_bytes(), f"{muxer}.bin")
        assert answer.status_code == 202, f"{muxer}: {answer.status_code} {answer.text}"
        fids[muxer] = answer.json()["fid"]
    wrong = {}
    for muxer, fid in fids.items():
        status = user.finished(fid)
        if status["state"] != "done":
            wrong[muxer] = f"{status['state']}: {status.get('reason')}"
            continue
        seconds = mp3_duration(user.mp3(fid, tmp_path))
        if abs(seconds - SECONDS) > TOLERANCE_SECONDS:
            wrong[muxer] = f"{seconds:.2f} s, not {SECONDS} s"
        elif status.get("warning"):
            wrong[muxer] = f"warned: {status['warning']}"
    assert not wrong, f"{len(wrong)} of {len(table)} formats: {wrong}"


# --- what phones, cameras and recorders write ---------------------------------------------


@pytest.mark.parametrize(
    ("make", "seconds"),
    [
        (mdat_first_mov, SECONDS),  # iPhone Live Photo movie: mdat first, no ftyp
        (phone_3gp, SECONDS),  # only 3GP brands in ftyp
        (rf64_wav, SECONDS),  # field recorder, 24-bit 48 kHz
        (mp3_cut_mid_frame, 3.9),  # 4 s, less the 1,000 bytes cut off its start
    ],
    ids=["mdat-first-mov", "3gp-brands-only", "rf64-wav", "mp3-cut-mid-frame"],
)
def test_device_files_convert_to_the_right_length(user, tmp_path, make, seconds):
    status, mp3 = user.convert(make(tmp_path / "source"), tmp_path)
    assert status["state"] == "done", status
    assert mp3_duration(mp3) == pytest.approx(seconds, abs=TOLERANCE_SECONDS)


def test_a_file_part_without_a_filename_is_taken_and_named(user, tmp_path):
    status, mp3 = user.convert(rf64_wav(tmp_path / "source"), tmp_path, filename=None)
    assert status["state"] == "done", status
    assert status["filename"] == "upload"
    assert mp3_duration(mp3) == pytest.approx(SECONDS, abs=TOLERANCE_SECONDS)


# --- the timeline ---------------------------------------------------------------------------


def test_sound_that_starts_late_keeps_its_place(user, tmp_path):
    """10 s of video whose sound starts at 4 s: a 10 s MP3, silent for its first 4 s."""
    status, mp3 = user.convert(late_audio(tmp_path / "late.mp4"), tmp_path)
    assert status["state"] == "done", status
    assert mp3_duration(mp3) == pytest.approx(10.0, abs=TOLERANCE_SECONDS)
    assert volume(mp3, start=0.0, length=3.8) < -60  # silence
    assert volume(mp3, start=4.3, length=5.0) > -20  # the tone


def test_a_gap_in_the_sound_stays_a_gap(user, tmp_path):
    """Sound 0-3 s and 6-9 s: a 9 s MP3 with 3 s of silence in the middle, not 6 s."""
    status, mp3 = user.convert(audio_with_a_gap(tmp_path / "gap.mkv"), tmp_path)
    assert status["state"] == "done", status
    assert mp3_duration(mp3) == pytest.approx(9.0, abs=TOLERANCE_SECONDS)
    assert volume(mp3, start=3.3, length=2.4) < -60
    assert volume(mp3, start=6.3, length=2.4) > -20


# --- the track ------------------------------------------------------------------------------


def test_the_track_marked_default_is_the_one_converted(user, tmp_path):
    status, mp3 = user.convert(two_tracks_second_default(tmp_path / "two.mkv"), tmp_path)
    assert status["state"] == "done", status
    assert volume(mp3) > -20  # the tone, not the silent first track


def test_a_track_ffmpeg_cannot_decode_is_passed_over(user, tmp_path):
    status, mp3 = user.convert(undecodable_first_track(tmp_path / "apac.mp4"), tmp_path)
    assert status["state"] == "done", status
    assert mp3_duration(mp3) == pytest.approx(SECONDS, abs=TOLERANCE_SECONDS)
    assert volume(mp3) > -20


# --- cut-off files --------------------------------------------------------------------------


def test_a_file_cut_off_in_transit_is_done_with_a_warning_everywhere(user, tmp_path):
    status, mp3 = user.convert(faststart_mp4_cut(tmp_path / "cut.mp4"), tmp_path)
    assert status["state"] == "done", status
    warning = status.get("warning", "")
    assert "of 10.0 s could be read; the file looks cut off" in warning, status
    assert mp3_duration(mp3) < 6
    listed = requests.get(f"{GATEWAY_URL}/jobs", headers=user.headers, timeout=10).json()
    assert listed["jobs"][0]["warning"] == warning
    [mail] = wait_for_mails(user.email)
    assert warning in mail.get_content()


def test_a_whole_file_gets_no_warning(user, tmp_path):
    status, _ = user.convert(late_audio(tmp_path / "whole.mp4"), tmp_path)
    assert status["state"] == "done" and "warning" not in status


# --- impostors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"Just some notes about the holiday.\n" * 20,
        b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64,
        b"ffconcat version 1.0\nfile '/etc/passwd'\n",
        bytes(range(256)) * 64,
    ],
    ids=["text", "pdf", "png", "concat-list", "bytes"],
)
def test_what_is_not_media_is_refused_with_415(user, content):
    answer = user.upload(content, "holiday.mp4")  # the name says video; the bytes do not
    assert answer.status_code == 415, answer.text
    assert answer.json()["error"] == "unsupported_media_type"
    assert mails_to(user.email) == []
