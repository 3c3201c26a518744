"""The built-in issuer's users: argon2 password hashes and tenant memberships in one JSON file (docs/identity.md)."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from adapters.issuer import ROLE_NAMES

log = logging.getLogger(__name__)

DEMO_PASSWORD = "casestream"  # the shipped demo password, named so the start-up warning can look for it
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
TENANT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,99}$")
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/ -]{0,99}$")

# OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): the library default (64 MiB, 3 passes, 4 lanes) costs ~1 s
# of CPU per login on a busy 2-core host, which turns the login form into a denial-of-service lever
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """Verified for unknown user names so that a miss costs what a hit costs: user existence does not leak by timing."""
    return _hasher.hash("not a password of anyone")


class UserFileInvalid(ValueError):
    """The users file or a change to it is malformed; the message names the field."""


@dataclass(frozen=True)
class Membership:
    """A user's roles and groups in one tenant."""

    roles: tuple[str, ...]
    groups: tuple[str, ...] = ()


@dataclass
class User:
    """One login: a password hash and the tenants the user belongs to, in the file's order."""

    name: str
    password_hash: str
    memberships: dict[str, Membership] = field(default_factory=dict)

    def check_password(self, password: str) -> bool:
        return _verify(self.password_hash, password)


def hash_password(password: str) -> str:
    if not password:
        raise UserFileInvalid("password: must not be empty")
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_name(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.match(value):
        raise UserFileInvalid(f"{what}: {value!r} does not match {pattern.pattern}")
    return value


def check_roles(roles: list[str] | tuple[str, ...], where: str = "roles") -> tuple[str, ...]:
    unknown = [r for r in roles if r not in ROLE_NAMES]
    if unknown:
        raise UserFileInvalid(f"{where}: unknown role(s) {', '.join(unknown)}; known: {', '.join(sorted(ROLE_NAMES))}")
    return tuple(dict.fromkeys(roles))


def check_groups(groups: list[str] | tuple[str, ...], where: str = "groups") -> tuple[str, ...]:
    for group in groups:
        check_name(group, GROUP_NAME, where)
    return tuple(dict.fromkeys(groups))


DEMO_USERS: dict[str, dict[str, Membership]] = {
    "alice": {"acme": Membership(("caseworker",), ("claims-team",))},
    "bob": {"acme": Membership(("supervisor",), ("claims-team",))},
    "carol": {"acme": Membership(("caseworker",))},
    "admin": {"acme": Membership(("admin", "supervisor")), "globex": Membership(("admin", "supervisor"))},
}


class UserDirectory:
    """The users file, read again when it changes on disk (so `casestream users …` applies without a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, User] = {}
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._read()  # at start a broken file stops the server, naming the field

    @classmethod
    def open_or_create_demo(cls, path: Path) -> UserDirectory:
        """The directory at path; when the file does not exist, one with the demo users (password `casestream`)."""
        if not path.exists():
            demo = {name: User(name, hash_password(DEMO_PASSWORD), dict(grants)) for name, grants in DEMO_USERS.items()}
            write_users(path, demo)
        return cls(path)

    def reload(self) -> None:
        """Read the file if it changed since the last read; a file broken while running keeps the last good users."""
        try:
            self._read()
        except (OSError, UserFileInvalid) as exc:
            log.error("users file %s not reloaded, the last good version stays in force: %s", self.path, exc)

    def _read(self) -> None:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        with self._lock:
            self._users = read_users(self.path)
            self._stamp = stamp

    def users(self) -> dict[str, User]:
        self.reload()
        return dict(self._users)

    def get(self, name: str) -> User | None:
        self.reload()
        return self._users.get(name)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the password is right; None otherwise, after the same work for unknown names."""
        user = self.get(name)
        if user is None:
            _verify(_dummy_hash(), password)
            return None
        return user if user.check_password(password) else None

    def with_password(self, password: str) -> list[str]:
        """Names of the users whose password is this one (the start-up warning about the demo password)."""
        return [name for name, user in self.users().items() if user.check_password(password)]


def read_users(path: Path) -> dict[str, User]:
    """Parse the users file; UserFileInvalid naming the field when it is malformed."""
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserFileInvalid(f"{path}: not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("users"), dict):
        raise UserFileInvalid(f"{path}: users: must be an object of user name → user")
    users: dict[str, User] = {}
    for name, entry in document["users"].items():
        where = f"{path}: users.{name}"
        check_name(name, USER_NAME, f"{where} (name)")
        if not isinstance(entry, dict) or not isinstance(entry.get("password"), str):
            raise UserFileInvalid(f"{where}.password: must be an argon2 hash string")
        memberships = entry.get("memberships", {})
        if not isinstance(memberships, dict):
            raise UserFileInvalid(f"{where}.memberships: must be an object of tenant → {{roles, groups}}")
        parsed: dict[str, Membership] = {}
        for tenant, grant in memberships.items():
            check_name(tenant, TENANT_NAME, f"{where}.memberships (tenant)")
            if not isinstance(grant, dict):
                raise UserFileInvalid(f"{where}.memberships.{tenant}: must be an object with roles and groups")
            roles, groups = grant.get("roles", []), grant.get("groups", [])
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise UserFileInvalid(f"{where}.memberships.{tenant}.roles: must be a list of role names")
            if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
                raise UserFileInvalid(f"{where}.memberships.{tenant}.groups: must be a list of group names")
            parsed[tenant] = Membership(check_roles(roles, f"{where}.memberships.{tenant}.roles"),
                                        check_groups(groups, f"{where}.memberships.{tenant}.groups"))
        users[name] = User(name, entry["password"], parsed)
    return users


def write_users(path: Path, users: dict[str, User]) -> None:
    """Write the users file atomically, readable by its owner only (it holds password hashes)."""
    document: dict[str, Any] = {"users": {
        user.name: {
            "password": user.password_hash,
            "memberships": {t: {"roles": list(m.roles), "groups": list(m.groups)} for t, m in user.memberships.items()},
        }
        for user in users.values()
    }}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)
