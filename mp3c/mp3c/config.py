"""Where mp3c finds the server and the token: flags, then the environment, then its file.

The file is JSON, `$MP3C_CONFIG` or `$XDG_CONFIG_HOME/mp3c/config.json` (default
`~/.config/mp3c/config.json`), written by `mp3c login` with mode 600 (the token is a
credential), in a folder of mode 700. It also remembers unfinished uploads, so that a
`mp3c convert` stopped half way (Ctrl-C, a crash, a dropped network) resumes where the
server says the file ends instead of sending it again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"
URL_VARIABLE, TOKEN_VARIABLE, CONFIG_VARIABLE = "MP3C_URL", "MP3C_TOKEN", "MP3C_CONFIG"


def config_path(environ: dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get(CONFIG_VARIABLE):
        return Path(environ[CONFIG_VARIABLE])
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mp3c" / "config.json"


@dataclass
class Config:
    path: Path
    values: dict[str, Any]

    @classmethod
    def load(cls, environ: dict[str, str] | None = None) -> Config:
        path = config_path(environ)
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            values = {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        return cls(path, values if isinstance(values, dict) else {})

    def save(self) -> None:
        """Write the file with mode 600 (and its folder 700): it holds the token."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(self.path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(self.values, out, indent=2, sort_keys=True)
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)

    # --- unfinished uploads: file fingerprint -> upload URL ----------------------------------

    def upload_url(self, fingerprint: str) -> str | None:
        return self.values.get("uploads", {}).get(fingerprint)

    def remember_upload(self, fingerprint: str, url: str) -> None:
        self.values.setdefault("uploads", {})[fingerprint] = url
        self.save()

    def forget_upload(self, fingerprint: str) -> None:
        if self.values.get("uploads", {}).pop(fingerprint, None) is not None:
            self.save()


class ConfigError(Exception):
    pass


def resolve(
    flag_url: str | None,
    flag_token: str | None,
    config: Config,
    environ: dict[str, str] | None = None,
) -> tuple[str, str | None]:
    """The server URL and token: a flag wins, then the environment, then the file."""
    environ = os.environ if environ is None else environ
    url = flag_url or environ.get(URL_VARIABLE) or config.values.get("url") or DEFAULT_URL
    token = flag_token or environ.get(TOKEN_VARIABLE) or config.values.get("token")
    return url.rstrip("/"), token
