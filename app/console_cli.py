"""`loyalsync console-password`: the hash of a console password, for the variable a
`[[console.users]]` entry names (the password itself is never configured anywhere)."""

from __future__ import annotations

import typer

__all__ = ["console_app"]

console_app = typer.Typer(no_args_is_help=False, add_completion=False, pretty_exceptions_show_locals=False)


@console_app.command("console-password")
def console_password() -> None:
    """Ask for a password twice and print its scrypt hash (put it in the user's password_hash_env)."""
    from app.console.auth import hash_password

    # Prompts on stderr: `export VAR="$(loyalsync console-password)"` captures the hash alone.
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    if len(password) < 10:
        typer.echo("A console password needs at least 10 characters.", err=True)
        raise typer.Exit(code=2)
    typer.echo(hash_password(password))
