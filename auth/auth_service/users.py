"""The `user` table, through flask-mysqldb's per-request connection."""

from __future__ import annotations

from flask_mysqldb import MySQL

mysql = MySQL()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def password_hash_for(email: str) -> str | None:
    cursor = mysql.connection.cursor()
    try:
        cursor.execute("SELECT password_hash FROM user WHERE email = %s", (normalize_email(email),))
        row = cursor.fetchone()
    finally:
        cursor.close()
    return row[0] if row else None


def create_user(email: str, password_hash: str) -> bool:
    """Insert the user; False when the email is already taken."""
    connection = mysql.connection
    cursor = connection.cursor()
    try:
        cursor.execute(
            "INSERT IGNORE INTO user (email, password_hash) VALUES (%s, %s)",
            (normalize_email(email), password_hash),
        )
        created = cursor.rowcount == 1
        connection.commit()
    finally:
        cursor.close()
    return created


def ping() -> None:
    cursor = mysql.connection.cursor()
    try:
        cursor.execute("SELECT 1 FROM user LIMIT 1")
        cursor.fetchall()
    finally:
        cursor.close()
