"""One OIDC issuer's signing keys: discovery document → jwks_uri → JWKS, cached, refetched on an unknown kid."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, RSAKey

from adapters.tokens import IssuerUnavailable, TokenInvalid

log = logging.getLogger(__name__)

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


def algorithms_for(key: Key) -> frozenset[str]:
    """The signature algorithms a key may verify: fixed by its type (never none or HS*), narrowed by its `alg`."""
    if isinstance(key, RSAKey):
        allowed = RSA_ALGORITHMS
    elif isinstance(key, ECKey) and key.curve_name in EC_ALGORITHMS:
        allowed = frozenset({EC_ALGORITHMS[key.curve_name]})
    else:
        return frozenset()
    declared = key.get("alg")
    return allowed & {declared} if isinstance(declared, str) else allowed


class IssuerKeys:
    """The verification keys of one issuer, trusted for cache_seconds; an unknown kid refetches at most once
    per refetch_interval, so a flood of forged kids costs the issuer one request per interval."""

    def __init__(
        self, issuer: str, http: httpx.Client, *, cache_seconds: float, refetch_interval: float,
        on_keys_removed: Callable[[], None] = lambda: None,
    ) -> None:
        self.issuer = issuer
        self.http = http
        self.cache_seconds = cache_seconds
        self.refetch_interval = refetch_interval
        self.on_keys_removed = on_keys_removed
        self.fetches = 0  # how many times the JWKS was fetched (tests and metrics read it)
        self._keys: dict[str, Key] = {}
        self._fetched_at: float | None = None
        self._attempted_at = float("-inf")  # the last fetch, successful or not
        self._refetched_at = float("-inf")  # the last fetch caused by an unknown kid
        self._error: str | None = None
        self._lock = threading.Lock()

    def key_for(self, kid: str | None) -> Key:
        """The key with this kid (a token without kid: the issuer's only signing key); TokenInvalid otherwise."""
        now = time.monotonic()
        if self._fetched_at is None or now - self._fetched_at > self.cache_seconds:
            self._refresh(stale_at=self._fetched_at)
        key = self._find(kid)
        if key is None and now - self._refetched_at >= self.refetch_interval:
            self._refresh(stale_at=self._fetched_at, unknown_kid=True)
            key = self._find(kid)
        if key is None:
            raise TokenInvalid(f"token key id {kid!r} is not among the signing keys of {self.issuer}"
                               if kid is not None else
                               f"token names no key id and {self.issuer} has more than one signing key")
        return key

    def _find(self, kid: str | None) -> Key | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _refresh(self, *, stale_at: float | None, unknown_kid: bool = False) -> None:
        with self._lock:
            # another thread refreshed while this one waited: use its result
            if self._fetched_at != stale_at:
                return
            now = time.monotonic()
            if unknown_kid:
                if now - self._refetched_at < self.refetch_interval:
                    return
                self._refetched_at = now
            elif now - self._attempted_at < self.refetch_interval and self._error is not None:
                # the issuer failed moments ago: do not ask again on every request
                raise IssuerUnavailable(self._error, self._retry_after(now))
            self._attempted_at = now
            try:
                keys = self._fetch()
            except IssuerUnavailable as exc:
                self._error = str(exc)
                raise
            self._error = None
            removed = set(self._keys) - set(keys)
            self._keys = keys
            self._fetched_at = time.monotonic()
            self.fetches += 1
        if removed:
            log.info("issuer %s no longer publishes key(s) %s", self.issuer, ", ".join(sorted(removed)))
            self.on_keys_removed()

    def _retry_after(self, now: float) -> float:
        return max(1.0, self.refetch_interval - (now - self._attempted_at))

    def _unavailable(self, detail: str) -> IssuerUnavailable:
        return IssuerUnavailable(detail, max(1.0, self.refetch_interval))

    def _fetch(self) -> dict[str, Key]:
        discovery = self._get_json(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration", "discovery document")
        if discovery.get("issuer") != self.issuer:
            raise self._unavailable(f"the discovery document of {self.issuer} names issuer {discovery.get('issuer')!r}")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise self._unavailable(f"the discovery document of {self.issuer} has no usable jwks_uri")
        document = self._get_json(jwks_uri, "JWKS")
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise self._unavailable(f"the JWKS of {self.issuer} has no keys list")
        return _signing_keys(entries, self.issuer)

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self.http.get(url)
        except httpx.HTTPError as exc:
            failure = type(exc).__name__
            raise self._unavailable(f"the {what} of {self.issuer} could not be fetched ({failure})") from None
        if response.status_code != 200:
            raise self._unavailable(f"the {what} of {self.issuer} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise self._unavailable(f"the {what} of {self.issuer} is not JSON") from None
        if not isinstance(body, dict):
            raise self._unavailable(f"the {what} of {self.issuer} is not a JSON object")
        return body


def _signing_keys(entries: list[Any], issuer: str) -> dict[str, Key]:
    """A JWKS's signature keys by kid; encryption keys, symmetric keys and keys no algorithm fits are left out."""
    keys: dict[str, Key] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or entry.get("kty") not in ("RSA", "EC"):
            continue
        try:
            key = JWKRegistry.import_key(entry)
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("issuer %s publishes a key that does not import: %s", issuer, exc)
            continue
        if algorithms_for(key):
            keys[str(entry.get("kid", ""))] = key
    return keys
