"""`flask --app server create-user EMAIL`: users are made without editing SQL."""

from __future__ import annotations

import sys

import click
from flask import Blueprint

from . import security, users

bp = Blueprint("cli", __name__, cli_group=None)


@bp.cli.command("create-user")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input instead of prompting (for scripts).",
)
@click.option("--exist-ok", is_flag=True, help="Succeed quietly when the user already exists.")
def create_user_command(email: str, password_stdin: bool, exist_ok: bool) -> None:
    """Create a user who logs in with EMAIL and a password."""
    email = users.normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise click.BadParameter("give the user's email address", param_hint="EMAIL")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("the password must be at least 8 characters")
    if users.create_user(email, security.hash_password(password)):
        click.echo(f"created user {email}")
    elif exist_ok:
        click.echo(f"user {email} already exists")
    else:
        raise click.ClickException(f"user {email} already exists; pick another email")
