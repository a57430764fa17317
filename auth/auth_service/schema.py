"""auth/init.sql as statements, for whoever creates the schema (dev stack, tests).

init.sql makes the table as it is now, on an empty database (the MySQL image runs it once,
on first start). A database made before a column existed gets that column here: `apply`
adds every column of ADDED_COLUMNS the table lacks, so running it again changes nothing.
(MySQL 8 has no `ADD COLUMN IF NOT EXISTS`, so init.sql cannot say it itself.)
"""

from __future__ import annotations

from pathlib import Path

INIT_SQL = Path(__file__).resolve().parent.parent / "init.sql"

#: Columns added after the table was first made: (name, definition), as in init.sql.
ADDED_COLUMNS = (("token_version", "INT UNSIGNED NOT NULL DEFAULT 0 AFTER password_hash"),)


def statements() -> list[str]:
    """init.sql's statements, comment lines dropped; it holds no ';' inside strings."""
    text = "\n".join(
        line for line in INIT_SQL.read_text().splitlines() if not line.lstrip().startswith("--")
    )
    return [s.strip() for s in text.split(";") if s.strip()]


def apply(cursor) -> None:
    for statement in statements():
        cursor.execute(statement)
    for name, definition in ADDED_COLUMNS:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'user' AND COLUMN_NAME = %s",
            (name,),
        )
        if cursor.fetchone()[0] == 0:
            cursor.execute(f"ALTER TABLE user ADD COLUMN {name} {definition}")
