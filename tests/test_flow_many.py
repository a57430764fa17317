"""The whole flow under load: 20 uploads from 4 users at once, each through the README's
curl commands. Every upload becomes an MP3 and a mail to its own user, none is lost,
duplicated or dead-lettered."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from reference_flow import (
    dead_lettered_fids,
    download,
    fid_in,
    log_in,
    mails_to,
    make_video,
    mp3_duration,
    upload,
    wait_for_mails,
)

pytestmark = pytest.mark.stack  # drives the stack make run started

USERS, CLIPS = 4, 5


def test_twenty_uploads_from_four_users_at_once(new_user, tmp_path):
    users = [new_user(f"many{n}") for n in range(USERS)]
    tokens = [log_in(address, password, tmp_path) for address, password in users]
    # Each clip has its own length, so an MP3 shows which upload it came from.
    clips = [make_video(tmp_path / f"clip{i}.mp4", 2 + i) for i in range(CLIPS)]
    uploads = [(user, clip) for user in range(USERS) for clip in range(CLIPS)]

    with ThreadPoolExecutor(len(uploads)) as pool:
        answers = list(pool.map(lambda uc: upload(tokens[uc[0]], clips[uc[1]]), uploads))
    fid_of = {upload_: answer["fid"] for upload_, answer in zip(uploads, answers, strict=True)}
    assert len(set(fid_of.values())) == USERS * CLIPS

    for user, (address, _password) in enumerate(users):
        mails = wait_for_mails(address, CLIPS, timeout=240)
        by_fid = {fid_in(mail): mail for mail in mails}
        assert set(by_fid) == {fid_of[(user, clip)] for clip in range(CLIPS)}, address
        for clip in range(CLIPS):
            mail = by_fid[fid_of[(user, clip)]]
            assert mail["Subject"] == f"Your MP3 is ready: clip{clip}.mp4"

    def fetch(upload_):
        user, clip = upload_
        folder = tmp_path / f"user{user}"
        folder.mkdir(exist_ok=True)
        output = folder / f"clip{clip}.mp3"
        return download(tokens[user], fid_of[upload_], output), output

    with ThreadPoolExecutor(8) as pool:
        results = dict(zip(uploads, pool.map(fetch, uploads), strict=True))
    for (user, clip), (status, output) in results.items():
        assert status == 200, (user, clip)
        assert mp3_duration(output) == pytest.approx(2 + clip, abs=0.3)

    assert not set(fid_of.values()) & dead_lettered_fids()
    for address, _password in users:
        assert len(mails_to(address)) == CLIPS  # and no second mail came meanwhile
