"""`casestream users add|passwd|grant|revoke|list`: the built-in issuer's users file (docs/identity.md)."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from adapters.user_directory import (
    TENANT_NAME,
    USER_NAME,
    Membership,
    User,
    UserDirectory,
    UserFileInvalid,
    check_groups,
    check_name,
    check_roles,
    hash_password,
    read_users,
    write_users,
)
from casestream.identity import users_path
from casestream.settings import Settings

T = TypeVar("T")
app = typer.Typer(help="Manage the built-in issuer's users and their tenant memberships.", no_args_is_help=True)

PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]
Roles = Annotated[list[str] | None, typer.Option("--role", "-r", help="Role (repeatable).")]
Groups = Annotated[list[str] | None, typer.Option("--group", "-g", help="Group (repeatable).")]


def _load() -> tuple[Settings, dict[str, User]]:
    settings = Settings()
    path = users_path(settings)
    if not path.exists():
        UserDirectory.open_or_create_demo(path)
    try:
        return settings, read_users(path)
    except UserFileInvalid as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _save(settings: Settings, users: dict[str, User]) -> None:
    write_users(users_path(settings), users)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise typer.BadParameter("the two entries differ", param_hint="password")
    try:
        return hash_password(password)
    except UserFileInvalid as exc:
        raise typer.BadParameter(str(exc).split(": ", 1)[-1], param_hint="password") from None


def _checked(check: Callable[[], T], param: str) -> T:
    """Run a validation, turning UserFileInvalid into a usage error naming the option."""
    try:
        return check()
    except UserFileInvalid as exc:
        raise typer.BadParameter(str(exc), param_hint=param) from None


def _user(users: dict[str, User], name: str) -> User:
    if name not in users:
        raise typer.BadParameter(f"no user {name!r} in the users file", param_hint="USER")
    return users[name]


def _record(settings: Settings, user: str, tenant: str, before: Membership | None, after: Membership | None) -> None:
    """The one place membership changes reach the audit log (commands/audit.py), by the operator's OS user name."""
    from casestream.bootstrap import build_event_store
    from commands.audit import record_membership_change

    def shape(m: Membership | None) -> dict[str, list[str]]:
        return {"roles": list(m.roles), "groups": list(m.groups)} if m else {"roles": [], "groups": []}

    store = build_event_store(settings)
    try:
        record_membership_change(store, tenant, user, shape(before), shape(after), by=getpass.getuser(), source="cli")
    finally:
        store.close()


@app.command("add")
def add(
    user: Annotated[str, typer.Argument(help="User name.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant to make the user a member of.")] = None,
    roles: Roles = None, groups: Groups = None, password_stdin: PasswordStdin = False,
) -> None:
    """Add a user (password prompted, or --password-stdin), optionally with a first tenant membership."""
    settings, users = _load()
    _checked(lambda: check_name(user, USER_NAME, "user name"), "USER")
    if user in users:
        raise typer.BadParameter(f"user {user!r} exists (use passwd or grant)", param_hint="USER")
    if tenant is None and (roles or groups):
        raise typer.BadParameter("roles and groups need a tenant", param_hint="--tenant")
    memberships: dict[str, Membership] = {}
    if tenant is not None:
        memberships[tenant] = _membership(tenant, roles or [], groups or [])
    users[user] = User(user, _read_password(password_stdin), memberships)
    _save(settings, users)
    if tenant is not None:
        _record(settings, user, tenant, None, memberships[tenant])
    typer.echo(f"added {user}")


def _membership(tenant: str, roles: list[str], groups: list[str]) -> Membership:
    _checked(lambda: check_name(tenant, TENANT_NAME, "tenant"), "--tenant")
    return Membership(_checked(lambda: check_roles(roles), "--role"), _checked(lambda: check_groups(groups), "--group"))


@app.command("passwd")
def passwd(user: Annotated[str, typer.Argument(help="User name.")], password_stdin: PasswordStdin = False) -> None:
    """Set a user's password."""
    settings, users = _load()
    _user(users, user).password_hash = _read_password(password_stdin)
    _save(settings, users)
    typer.echo(f"password of {user} changed")


@app.command("grant")
def grant(
    user: Annotated[str, typer.Argument(help="User name.")],
    tenant: Annotated[str, typer.Option(help="Tenant.")],
    roles: Roles = None, groups: Groups = None,
) -> None:
    """Make a user a member of a tenant, or add roles and groups to that membership."""
    settings, users = _load()
    found = _user(users, user)
    if not roles and not groups and tenant in found.memberships:
        raise typer.BadParameter("name at least one --role or --group to add", param_hint="--role")
    added = _membership(tenant, roles or [], groups or [])
    current = found.memberships.get(tenant)
    before = current or Membership(())
    found.memberships[tenant] = Membership(tuple(dict.fromkeys(before.roles + added.roles)),
                                           tuple(dict.fromkeys(before.groups + added.groups)))
    _save(settings, users)
    _record(settings, user, tenant, current, found.memberships[tenant])
    typer.echo(f"{user} in {tenant}: {_describe(found.memberships[tenant])}")


@app.command("revoke")
def revoke(
    user: Annotated[str, typer.Argument(help="User name.")],
    tenant: Annotated[str, typer.Option(help="Tenant.")],
    roles: Roles = None, groups: Groups = None,
) -> None:
    """Take roles and groups away; with neither, end the user's membership of the tenant."""
    settings, users = _load()
    found = _user(users, user)
    current = found.memberships.get(tenant)
    if current is None:
        raise typer.BadParameter(f"{user} is not a member of {tenant!r}", param_hint="--tenant")
    if not roles and not groups:
        del found.memberships[tenant]
        message = f"{user} is no longer a member of {tenant}"
    else:
        taken = Membership(tuple(r for r in (roles or []) if r in current.roles),
                           tuple(g for g in (groups or []) if g in current.groups))
        missing = [v for v in (roles or []) + (groups or []) if v not in current.roles + current.groups]
        if missing:
            raise typer.BadParameter(f"{user} in {tenant} does not have {', '.join(missing)}", param_hint="--role")
        found.memberships[tenant] = Membership(tuple(r for r in current.roles if r not in taken.roles),
                                               tuple(g for g in current.groups if g not in taken.groups))
        message = f"{user} in {tenant}: {_describe(found.memberships[tenant])}"
    _save(settings, users)
    _record(settings, user, tenant, current, found.memberships.get(tenant))
    typer.echo(message)


@app.command("list")
def list_users() -> None:
    """Print every user with their tenants, roles and groups (never the password hashes)."""
    _, users = _load()
    for user in users.values():
        tenants = "; ".join(f"{t}: {_describe(m)}" for t, m in user.memberships.items()) or "no tenant"
        typer.echo(f"{user.name}  {tenants}")


def _describe(membership: Membership) -> str:
    roles = ", ".join(membership.roles) or "no roles"
    return roles + (f" (groups {', '.join(membership.groups)})" if membership.groups else "")
