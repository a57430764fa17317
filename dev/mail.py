"""`make mail`: what the local SMTP sink received, oldest first (a maildir in var/mail)."""

from __future__ import annotations

import mailbox
import os
import sys
from email.utils import parsedate_to_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    path = Path(os.environ.get("MAIL_DIR", ROOT / "var" / "mail"))
    if not path.exists():
        sys.stdout.write(f"no mail yet ({path} does not exist; is `make run` up?)\n")
        return
    box = mailbox.Maildir(path, create=False)
    messages = sorted(box, key=lambda m: parsedate_to_datetime(m["Date"]) if m["Date"] else 0)
    for message in messages:
        sys.stdout.write(f"{message['Date']}  to {message['To']}  {message['Subject']}\n")
    sys.stdout.write(f"{len(messages)} mail(s) in {path}; read one with: less {path}/new/*\n")


if __name__ == "__main__":
    main()
