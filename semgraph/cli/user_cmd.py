"""``semgraph user``: manage the web application's users (``DATA_DIR/users.json``)."""

from __future__ import annotations

import sys

import click

from semgraph.cli import State, cli, handle_errors
from semgraph.users import ROLES, UserStore


def _users(state: State) -> UserStore:
    return UserStore.in_data_dir(state.config.data_dir)


@cli.group(name="user")
def user_group() -> None:
    """Add, list and remove web-application users (passwords are stored hashed, outside the graph)."""


@user_group.command(name="add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input "
              "instead of prompting.")
@click.option("--replace", is_flag=True, help="Change the role and password of an existing user (this logs out "
              "every session of the user).")
@click.pass_obj
@handle_errors
def user_add(state: State, name: str, role: str, password_stdin: bool, replace: bool) -> None:
    """Create the user NAME with a role; the password is asked twice (or read with --password-stdin).

    The password policy refuses short passwords, the most common ones, and the user name or role with only digits
    or symbols added; the message says which rule a refused password broke."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = _users(state).add(name, role, password, replace=replace)
    click.echo(f"user {user.name} ({user.role}) saved in {_users(state).path}")


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
