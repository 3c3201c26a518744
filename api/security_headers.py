"""Security headers on every response: the portal gets a strict CSP; API replies can be neither framed nor sniffed.

Pure ASGI (no task or thread per request). The portal is plain ES modules from /ui with no inline script or
style element, so `script-src 'self'` holds; `connect-src` adds the origins of the configured OIDC issuers,
whose token endpoints the portal calls during sign-in. /docs and /redoc load Swagger UI and ReDoc from a CDN, so
they get no CSP (they hold no data and are not the portal).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_API_CSP = b"default-src 'none'; frame-ancestors 'none'"
_NO_CSP = ("/docs", "/redoc")


def portal_csp(issuers: Iterable[str], storage: Iterable[str] = ()) -> bytes:
    """The portal's policy: everything from this origin only, plus the issuers' origins for the token calls and the
    object store's public origin for document uploads (the portal PUTs the bytes to presigned URLs)."""
    urls = [*issuers, *storage]
    origins = sorted({f"{p.scheme}://{p.netloc}" for p in map(urlsplit, urls) if p.scheme and p.netloc})
    connect = " ".join(["'self'", *origins])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"connect-src {connect}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ).encode()


class SecurityHeaders:
    """Adds _COMMON to every HTTP response, the portal CSP to the portal's pages and a deny-all CSP to the rest."""

    def __init__(self, app: ASGIApp, portal_policy: bytes) -> None:
        self.app = app
        self.portal_policy = portal_policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy_for(scope.get("path", ""))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = secured(message.get("headers", []), policy)
            await send(message)

        await self.app(scope, receive, with_headers)

    def policy_for(self, path: str) -> bytes | None:
        """The Content-Security-Policy of a path's responses (None: none)."""
        if path.startswith(_NO_CSP):
            return None
        if path == "/" or path.startswith("/ui"):
            return self.portal_policy
        return _API_CSP


def secured(headers: Iterable[tuple[bytes, bytes]], policy: bytes | None) -> list[tuple[bytes, bytes]]:
    """headers plus the security headers they do not set already (and policy as the CSP, if any)."""
    headers = list(headers)
    present = {name.lower() for name, _ in headers}
    headers += [(n, v) for n, v in _COMMON if n not in present]
    if policy is not None and b"content-security-policy" not in present:
        headers.append((b"content-security-policy", policy))
    return headers
