"""`flask --app server create-user|set-password|delete-user EMAIL`: users without SQL."""

from __future__ import annotations

import sys

import click
from flask import Blueprint

from . import security, users

bp = Blueprint("cli", __name__, cli_group=None)

_password_stdin = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input instead of prompting (for scripts).",
)


def _email(email: str) -> str:
    email = users.normalize_email(email)
    if "@" not in email or len(email) > 254:
        raise click.BadParameter("give the user's email address", param_hint="EMAIL")
    return email


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("the password must be at least 8 characters")
    return password


@bp.cli.command("create-user")
@click.argument("email")
@_password_stdin
@click.option("--exist-ok", is_flag=True, help="Succeed quietly when the user already exists.")
def create_user_command(email: str, password_stdin: bool, exist_ok: bool) -> None:
    """Create a user who logs in with EMAIL and a password."""
    email = _email(email)
    password = _new_password(password_stdin)
    if users.create_user(email, security.hash_password(password)):
        click.echo(f"created user {email}")
    elif exist_ok:
        click.echo(f"user {email} already exists")
    else:
        raise click.ClickException(f"user {email} already exists; pick another email")


@bp.cli.command("set-password")
@click.argument("email")
@_password_stdin
def set_password_command(email: str, password_stdin: bool) -> None:
    """Give EMAIL a new password; every token issued before is refused from now on."""
    email = _email(email)
    password = _new_password(password_stdin)
    if not users.set_password(email, security.hash_password(password)):
        raise click.ClickException(f"no user {email}")
    click.echo(f"password changed for {email}; tokens issued before are no longer accepted")


@bp.cli.command("delete-user")
@click.argument("email")
def delete_user_command(email: str) -> None:
    """Remove EMAIL; their tokens are refused at once (their files stay in MongoDB)."""
    email = _email(email)
    if not users.delete_user(email):
        raise click.ClickException(f"no user {email}")
    click.echo(f"deleted user {email}; their tokens are no longer accepted")
