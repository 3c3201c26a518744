"""What every token verifier shares: the port, its error, the verified-token cache and the role rules."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Protocol

from commands.bus import Actor

# The internal actors (BPMN engine, mail adapters). A token naming one would let a client act as they do.
INTERNAL_ROLES = frozenset({"process", "mail"})


class TokenInvalid(Exception):
    """The bearer token is missing, malformed, forged, expired or meant for someone else."""


class IssuerUnavailable(TokenInvalid):
    """The token's issuer cannot be used right now (its discovery document or JWKS could not be fetched, or is
    unusable): the token is not known to be bad, so the answer is 503 with Retry-After, not 401."""

    def __init__(self, detail: str, retry_after: float = 10.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class TokenVerifier(Protocol):
    """Turns a bearer token into the actor it names, or raises TokenInvalid saying why."""

    def verify(self, token: str) -> Actor: ...

    def known(self, token: str) -> Actor | None:
        """The actor of a token verified before and not expired since (no I/O, no signature check)."""
        ...


def without_internal_roles(roles: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The roles a token may grant: never an internal one, each once, in the token's order."""
    return tuple(dict.fromkeys(r for r in roles if r not in INTERNAL_ROLES))


class VerifiedTokens:
    """Tokens already verified, with their actor, until they expire (bounded, oldest dropped first).

    The signature check costs more than the rest of a typical request, and a token cannot change.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[Actor, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> Actor | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry[1] <= time.time():
            with self._lock:
                self._entries.pop(token, None)
            return None
        return entry[0]

    def put(self, token: str, actor: Actor, expires_at: float) -> None:
        with self._lock:
            self._entries[token] = (actor, expires_at)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry (a key left a JWKS: the tokens it signed must be checked again)."""
        with self._lock:
            self._entries.clear()
