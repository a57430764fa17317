"""mp3c without a server: where it finds its settings, the config file's mode, what each
failure exits with and says, and the names it gives downloads."""

from __future__ import annotations

import socket
import stat

import pytest

from mp3c import cli
from mp3c.api import ApiError, filename_of
from mp3c.config import DEFAULT_URL, Config, resolve
from mp3c.upload import encode_metadata


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "conf" / "mp3c.json"
    monkeypatch.setenv("MP3C_CONFIG", str(path))
    monkeypatch.delenv("MP3C_URL", raising=False)
    monkeypatch.delenv("MP3C_TOKEN", raising=False)
    return path


def test_the_config_file_is_written_with_mode_600(config_file):
    config = Config.load()
    config.values.update(url="http://example.test", token="secret")
    config.save()
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_file.parent.stat().st_mode) == 0o700
    assert Config.load().values["token"] == "secret"


def test_a_flag_wins_over_the_environment_which_wins_over_the_file(config_file):
    config = Config(config_file, {"url": "http://file.test/", "token": "file"})
    assert resolve(None, None, config, {}) == ("http://file.test", "file")
    environ = {"MP3C_URL": "http://env.test", "MP3C_TOKEN": "env"}
    assert resolve(None, None, config, environ) == ("http://env.test", "env")
    assert resolve("http://flag.test", "flag", config, environ) == ("http://flag.test", "flag")
    assert resolve(None, None, Config(config_file, {}), {}) == (DEFAULT_URL, None)


# Each row: the status the API answered, then the exit code it means.
EXITS = [(401, 3), (400, 4), (404, 4), (413, 4), (429, 4), (0, 5), (500, 5), (503, 5)]


@pytest.mark.parametrize(("status", "code"), EXITS)
def test_each_failure_has_its_exit_code(status, code):
    assert ApiError("x", status=status).exit_code == code


def test_an_api_refusal_is_shown_as_its_message():
    body = b'{"error": "invalid_option", "message": "format must be one of mp3, m4a."}'
    error = ApiError.from_response(400, body)
    assert (error.message, error.error, error.exit_code) == (
        "format must be one of mp3, m4a.",
        "invalid_option",
        4,
    )
    assert ApiError.from_response(502, b"<html>bad gateway</html>").message == (
        "the server answered 502"
    )


def test_without_a_token_it_says_log_in_and_exits_3(config_file, capsys):
    assert cli.main(["jobs"]) == 3
    assert "mp3c login" in capsys.readouterr().err


def test_an_unreachable_server_exits_5(config_file, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    assert cli.main(["--url", f"http://127.0.0.1:{port}", "--token", "t", "jobs"]) == 5
    assert "cannot reach" in capsys.readouterr().err


def test_a_missing_file_is_a_usage_error(config_file, tmp_path, capsys):
    assert cli.main(["--token", "t", "convert", str(tmp_path / "nope.mp4")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_wrong_usage_exits_2():
    with pytest.raises(SystemExit) as stopped:
        cli.main(["convert", "a.mp4", "--channels", "surround"])
    assert stopped.value.code == 2


@pytest.mark.parametrize("command", ["convert", "get"])
@pytest.mark.parametrize("output", ["notes.txt", "notes.txt/sub"])
def test_an_output_that_is_a_file_is_a_usage_error(config_file, tmp_path, capsys, command, output):
    (tmp_path / "clip.mp4").write_bytes(b"video")
    (tmp_path / "notes.txt").write_text("mine")
    what = str(tmp_path / "clip.mp4") if command == "convert" else "fid"
    assert cli.main(["--token", "t", command, what, "-o", str(tmp_path / output)]) == 2
    said = capsys.readouterr().err
    assert said == f"mp3c: -o {tmp_path / output}: not a folder; give a folder for the results\n"
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("attachment; filename=clip.opus", "clip.opus"),
        ('attachment; filename="my clip.mp3"', "my clip.mp3"),
        ("attachment; filename=x.mp3; filename*=UTF-8''d%C3%ADa.mp3", "día.mp3"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ("", None),
    ],
)
def test_a_download_is_named_by_its_content_disposition_without_folders(header, name):
    assert filename_of(header) == name


def test_metadata_is_written_as_tus_asks():
    assert encode_metadata({"filename": "a.mp4", "format": "opus"}) == (
        "filename YS5tcDQ=,format b3B1cw=="
    )


class FakeApi:
    """The API's answers for a convert: every job done, every download its fid's bytes."""

    url = "http://example.test"

    def job(self, fid):
        return {"fid": fid, "state": "done", "progress": 100}

    def download(self, fid):
        return "server.mp3", len(fid), iter([fid.encode()])


def convert(tmp_path, monkeypatch, refuse, *names, output="out"):
    """Run `mp3c convert NAMES -o OUTPUT` in tmp_path; the server refuses the files in `refuse`."""
    paths = []
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"video")
        paths.append(path)

    def upload(api, path, options, config, quiet=False):
        if path.name in refuse:
            raise ApiError("this file has no audio track.", status=400, error="no_audio")
        return {"fid": f"fid-{paths.index(path)}"}

    monkeypatch.setattr(cli, "upload", upload)
    args = cli.parser().parse_args(
        ["-q", "convert", *map(str, paths), "-o", str(tmp_path / output)]
    )
    return cli.cmd_convert(FakeApi(), args, Config(tmp_path / "c.json", {}))


def test_a_refused_file_is_named_and_the_others_are_still_converted(tmp_path, monkeypatch, capsys):
    code = convert(tmp_path, monkeypatch, {"text.txt"}, "a.mp4", "text.txt", "b.mp4")
    assert code == 4
    err = capsys.readouterr().err
    assert f"mp3c: {tmp_path / 'text.txt'}: this file has no audio track." in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp3", "b.mp3"]


def test_get_keeps_an_existing_file_and_a_result_beside_its_mp3_source(tmp_path, monkeypatch):
    (tmp_path / "x.mp3").write_bytes(b"mine")
    args = cli.parser().parse_args(["-q", "get", "fid-9", "-o", str(tmp_path)])
    assert cli.cmd_get(FakeApi(), args, Config(tmp_path / "c.json", {})) == 0
    assert (tmp_path / "server.mp3").read_bytes() == b"fid-9"
    assert cli.cmd_get(FakeApi(), args, Config(tmp_path / "c.json", {})) == 0
    assert (tmp_path / "server (1).mp3").read_bytes() == b"fid-9"
    assert cli.fetch(FakeApi(), "fid-8", tmp_path, source=tmp_path / "x.mp3").name == "x (1).mp3"
    assert (tmp_path / "x.mp3").read_bytes() == b"mine"
    assert not list(tmp_path.glob("*.part"))


def test_results_of_the_same_name_never_overwrite_each_other(tmp_path, monkeypatch, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clip.mp3").write_bytes(b"mine")
    assert convert(tmp_path, monkeypatch, set(), "a/clip.mp4", "b/clip.mp4") == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["clip (1).mp3", "clip (2).mp3", "clip.mp3"]
    assert (out / "clip.mp3").read_bytes() == b"mine"
    assert (out / "clip (1).mp3").read_bytes() == b"fid-0"  # a/clip.mp4's
    assert (out / "clip (2).mp3").read_bytes() == b"fid-1"
