"""The `user` table, through flask-mysqldb's per-request connection."""

from __future__ import annotations

from dataclasses import dataclass

from flask_mysqldb import MySQL

mysql = MySQL()


@dataclass(frozen=True)
class User:
    id: int
    email: str
    password_hash: str
    #: Raised by every password change; tokens carry the one they were issued at.
    token_version: int


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _one(query: str, args: tuple) -> tuple | None:
    cursor = mysql.connection.cursor()
    try:
        cursor.execute(query, args)
        return cursor.fetchone()
    finally:
        cursor.close()


def _change(query: str, args: tuple) -> int:
    """Run a statement that changes rows and commit it: the number of rows it changed."""
    connection = mysql.connection
    cursor = connection.cursor()
    try:
        cursor.execute(query, args)
        changed = cursor.rowcount
        connection.commit()
    finally:
        cursor.close()
    return changed


def find(email: str) -> User | None:
    row = _one(
        "SELECT id, email, password_hash, token_version FROM user WHERE email = %s",
        (normalize_email(email),),
    )
    return User(*row) if row else None


def token_is_current(email: str, user_id: int, token_version: int) -> bool:
    """Whether a token issued to (`user_id`, `token_version`) for `email` still stands: the
    row is there, is the same row (not one made again with the same email) and its
    password has not changed since."""
    row = _one("SELECT id, token_version FROM user WHERE email = %s", (normalize_email(email),))
    return row is not None and (row[0], row[1]) == (user_id, token_version)


def create_user(email: str, password_hash: str) -> bool:
    """Insert the user; False when the email is already taken."""
    return (
        _change(
            "INSERT IGNORE INTO user (email, password_hash) VALUES (%s, %s)",
            (normalize_email(email), password_hash),
        )
        == 1
    )


def set_password(email: str, password_hash: str) -> bool:
    """A new password: every token issued before is refused from now on. False: no user."""
    return (
        _change(
            "UPDATE user SET password_hash = %s, token_version = token_version + 1"
            " WHERE email = %s",
            (password_hash, normalize_email(email)),
        )
        == 1
    )


def upgrade_password_hash(user_id: int, old_hash: str, new_hash: str) -> bool:
    """The same password hashed with today's parameters. Only if the hash is still the one
    verified: a password changed meanwhile is never overwritten. Tokens stay valid."""
    return (
        _change(
            "UPDATE user SET password_hash = %s WHERE id = %s AND password_hash = %s",
            (new_hash, user_id, old_hash),
        )
        == 1
    )


def delete_user(email: str) -> bool:
    """Remove the user; their tokens are refused at once. False: no such user."""
    return _change("DELETE FROM user WHERE email = %s", (normalize_email(email),)) == 1


def ping() -> None:
    """Raises unless the table answers with every column the service uses."""
    cursor = mysql.connection.cursor()
    try:
        cursor.execute("SELECT id, email, password_hash, token_version FROM user LIMIT 1")
        cursor.fetchall()
    finally:
        cursor.close()
