"""Create the auth database, its least-privilege users and its schema; idempotent.

Run by dev/stack.sh with var/dev.env in the environment. It connects as a MariaDB
administrator: MYSQL_ADMIN_USER / MYSQL_ADMIN_PASSWORD (default root with no password,
first over the local socket, as a fresh Debian install allows root, then over TCP).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import MySQLdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "auth"))
from auth_service import schema  # noqa: E402

log = logging.getLogger("bootstrap_db")
SOCKETS = ("/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock")
# Local clients reach MariaDB as one of these hosts, depending on socket/TCP and name resolution.
HOSTS = ("localhost", "127.0.0.1", "::1")


def admin_connection():
    user = os.environ.get("MYSQL_ADMIN_USER", "root")
    password = os.environ.get("MYSQL_ADMIN_PASSWORD", "")
    attempts = [{"unix_socket": s} for s in SOCKETS if os.path.exists(s)]
    attempts.append(
        {
            "host": os.environ.get("MYSQL_HOST", "127.0.0.1"),
            "port": int(os.environ.get("MYSQL_PORT", "3306")),
        }
    )
    errors = []
    for where in attempts:
        try:
            return MySQLdb.connect(user=user, passwd=password, connect_timeout=5, **where)
        except MySQLdb.Error as exc:
            errors.append(f"{where}: {exc}")
    sys.exit(
        "bootstrap_db: cannot connect as a MariaDB administrator; set MYSQL_ADMIN_USER and "
        "MYSQL_ADMIN_PASSWORD. Tried " + "; ".join(errors)
    )


def ensure_user(cursor, user: str, password: str, grants: list[str]) -> None:
    for host in HOSTS:
        cursor.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password))
        cursor.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password))
        for grant in grants:
            cursor.execute(f"GRANT {grant} TO %s@%s", (user, host))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="bootstrap_db: %(message)s")
    db = os.environ["MYSQL_DB"]
    connection = admin_connection()
    cursor = connection.cursor()
    cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4")
    cursor.execute(f"USE `{db}`")
    schema.apply(cursor)
    # The service reads users, adds them (create-user) and removes them (delete-user); of a
    # row it can change only the password hash and the token version (set-password, the
    # rehash on login). Nothing else, and no other table.
    ensure_user(
        cursor,
        os.environ["MYSQL_USER"],
        os.environ["MYSQL_PASSWORD"],
        [
            f"SELECT, INSERT, DELETE ON `{db}`.`user`",
            f"UPDATE (password_hash, token_version) ON `{db}`.`user`",
        ],
    )
    # The tests make and drop their own databases, all named mp3test_*.
    ensure_user(
        cursor,
        os.environ["TEST_MYSQL_USER"],
        os.environ["TEST_MYSQL_PASSWORD"],
        [r"ALL PRIVILEGES ON `mp3test\_%%`.*"],
    )
    connection.commit()
    log.info("database %s ready", db)


if __name__ == "__main__":
    main()
