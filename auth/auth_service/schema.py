"""auth/init.sql as statements, for whoever creates the schema (dev stack, tests)."""

from __future__ import annotations

from pathlib import Path

INIT_SQL = Path(__file__).resolve().parent.parent / "init.sql"


def statements() -> list[str]:
    """init.sql's statements, comment lines dropped; it holds no ';' inside strings."""
    text = "\n".join(
        line for line in INIT_SQL.read_text().splitlines() if not line.lstrip().startswith("--")
    )
    return [s.strip() for s in text.split(";") if s.strip()]


def apply(cursor) -> None:
    for statement in statements():
        cursor.execute(statement)
