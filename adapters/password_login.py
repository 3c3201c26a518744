"""The built-in issuer's password login: the user directory, per-user and per-address lockout, the tenant chosen."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from adapters.user_directory import Membership, UserDirectory


class LoginLocked(Exception):
    """Too many failed logins for this user or this address; nothing is checked until retry_after has passed."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"locked for {retry_after:.0f}s")
        self.retry_after = retry_after


class BadCredentials(Exception):
    """Unknown user or wrong password (deliberately the same answer)."""


class NotAMember(Exception):
    """The user authenticated but does not belong to the tenant asked for (or to any tenant)."""


class LoginThrottle:
    """Failed attempts per key (a user name, a client address): max_failures within window_seconds locks the key
    for lockout_seconds. Bounded: the least recently failing keys are forgotten first."""

    def __init__(self, max_failures: int, lockout_seconds: float, window_seconds: float | None = None,
                 capacity: int = 100_000) -> None:
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.window_seconds = window_seconds if window_seconds is not None else lockout_seconds
        self.capacity = capacity
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
        """Seconds until every one of keys is unlocked (0: none is locked)."""
        now = time.monotonic()
        with self._lock:
            waits = [self._locked_until.get(k, 0.0) - now for k in keys]
        return max(0.0, *waits)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                times = self._failures.pop(key, None) or deque()
                times.append(now)
                while times and times[0] < now - self.window_seconds:
                    times.popleft()
                if len(times) >= self.max_failures:
                    self._locked_until[key] = now + self.lockout_seconds
                    times.clear()
                self._failures[key] = times
            while len(self._failures) > self.capacity:
                self._failures.popitem(last=False)
            if len(self._locked_until) > self.capacity:
                self._locked_until = {k: t for k, t in self._locked_until.items() if t > now}

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


@dataclass(frozen=True)
class Granted:
    """Who logged in, into which tenant, with which roles and groups."""

    user: str
    tenant: str
    membership: Membership


class PasswordLogin:
    """Checks a password grant: lockout first, then the password, then the tenant membership."""

    def __init__(self, directory: UserDirectory, throttle: LoginThrottle, default_tenant: str) -> None:
        self.directory = directory
        self.throttle = throttle
        self.default_tenant = default_tenant

    def login(self, username: str, password: str, tenant: str | None, address: str) -> Granted:
        keys = (f"user:{username}", f"address:{address}")
        # a locked user or address is refused before the password is looked at: even the right one fails
        wait = self.throttle.retry_after(*keys)
        if wait > 0:
            raise LoginLocked(wait)
        user = self.directory.authenticate(username, password)
        if user is None:
            self.throttle.failed(*keys)
            raise BadCredentials("unknown user or wrong password")
        self.throttle.succeeded(keys[0])
        if tenant is None:
            if not user.memberships:
                raise NotAMember(f"user {username} belongs to no tenant")
            tenant = self.default_tenant if self.default_tenant in user.memberships else next(iter(user.memberships))
        membership = user.memberships.get(tenant)
        if membership is None:
            raise NotAMember(f"user {username} is not a member of tenant {tenant}")
        return Granted(user.name, tenant, membership)
