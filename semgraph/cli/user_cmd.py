"""``semgraph user``: manage the web application's users and their API tokens (``DATA_DIR/users.json``)."""

from __future__ import annotations

import sys

import click

from semgraph.cli import State, cli, handle_errors
from semgraph.users import MAX_TOKEN_DAYS, ROLES, UserStore


def _users(state: State) -> UserStore:
    return UserStore.in_data_dir(state.config.data_dir)


def _read_password(from_stdin: bool) -> str:
    """The first line of standard input, or a password asked twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


_PASSWORD_STDIN = click.option("--password-stdin", is_flag=True, help="Read the password from the first line of "
                               "standard input instead of prompting.")


@cli.group(name="user")
def user_group() -> None:
    """Add, list and remove web-application users, set passwords, create API tokens (all stored hashed, outside
    the graph)."""


@user_group.command(name="add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@_PASSWORD_STDIN
@click.option("--replace", is_flag=True, help="Change the role and password of an existing user (this logs out "
              "every session of the user).")
@click.pass_obj
@handle_errors
def user_add(state: State, name: str, role: str, password_stdin: bool, replace: bool) -> None:
    """Create the user NAME with a role; the password is asked twice (or read with --password-stdin).

    The password policy refuses short passwords, the most common ones, and the user name or role with only digits
    or symbols added; the message says which rule a refused password broke."""
    user = _users(state).add(name, role, _read_password(password_stdin), replace=replace)
    click.echo(f"user {user.name} ({user.role}) saved in {_users(state).path}")


@user_group.command(name="password")
@click.argument("name")
@_PASSWORD_STDIN
@click.pass_obj
@handle_errors
def user_password(state: State, name: str, password_stdin: bool) -> None:
    """Set a new password for the user NAME, keeping its role and API tokens; every session of NAME ends."""
    user = _users(state).set_password(name, _read_password(password_stdin))
    click.echo(f"new password of {user.name} ({user.role}) saved; their sessions were logged out")


@user_group.command(name="token")
@click.argument("name")
@click.option("--name", "label", default="api", show_default=True, help="Label of the token (to revoke it later).")
@click.option("--expires", "days", default=90, show_default=True, type=click.IntRange(1, MAX_TOKEN_DAYS),
              help="Days until the token stops working.")
@click.option("--revoke", "revoke", metavar="LABEL", help="Revoke the token LABEL of NAME instead.")
@click.option("--list", "list_", is_flag=True, help="List the tokens of NAME instead.")
@click.pass_obj
@handle_errors
def user_token(state: State, name: str, label: str, days: int, revoke: str | None, list_: bool) -> None:
    """Create an API token for the user NAME and print it once (only a salted hash is kept).

    Scripts send it as `Authorization: Bearer <token>` and act as NAME with NAME's role, without a cookie or CSRF
    token. --revoke LABEL stops a token at once; --list shows the labels and expiry dates."""
    users = _users(state)
    if revoke is not None and list_:
        raise click.UsageError("use --revoke or --list, not both")
    if revoke is not None:
        users.revoke_token(name, revoke)
        click.echo(f"token {revoke} of {name} revoked")
    elif list_:
        tokens = users.tokens(name)
        if not tokens:
            click.echo(f"{name} has no API token; create one with `semgraph user token {name}`")
        for info in tokens:
            click.echo(f"{info.label}\tcreated {info.created}\texpires {info.expires}")
    else:
        token = users.create_token(name, label, days)
        click.echo(token)
        click.echo(f"API token {label!r} of {name}, valid {days} days; shown only now, store it safely "
                   "(send it as 'Authorization: Bearer <token>')", err=True)


@user_group.command(name="list")
@click.pass_obj
@handle_errors
def user_list(state: State) -> None:
    """List the users and their roles."""
    users = _users(state).list()
    if not users:
        click.echo(f"no users in {_users(state).path}; add one with `semgraph user add NAME --role ROLE`")
    for user in users:
        click.echo(f"{user.name}\t{user.role}")


@user_group.command(name="remove")
@click.argument("name")
@click.pass_obj
@handle_errors
def user_remove(state: State, name: str) -> None:
    """Delete the user NAME."""
    _users(state).remove(name)
    click.echo(f"user {name} removed")
